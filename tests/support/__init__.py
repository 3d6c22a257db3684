"""Helpers that tests and the demo share: real services they start and data they generate."""
