"""Benchmarks of modelpilot beside its peers and the machine's floor; run `python -m bench [--quick]`."""
