"""docs/alerts.md says what the alert table in the code says: every alert, its severity, `for:`,
default limit and condition, and a runbook section for the anchor its runbook_url points to."""

from __future__ import annotations

import re

from modelpilot.reconcile.monitor.alerts import ALERTS
from modelpilot.reconcile.monitor.rules import OPERATOR_RULES
from tests.support.kube import REPO

PAGE = (REPO / "docs" / "alerts.md").read_text()


def table() -> dict[str, list[str]]:
    rows = {}
    for line in PAGE.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| Model") and len(cells) == 6:
            rows[cells[0]] = cells
    return rows


def test_the_table_matches_the_code() -> None:
    rows = table()
    assert set(rows) == set(ALERTS)
    for name, kind in ALERTS.items():
        _, _, limit, hold, severity, condition = rows[name]
        assert (hold, severity) == (kind.hold, kind.severity), name
        assert condition == (f"{kind.condition[0]}={kind.condition[1]}" if kind.condition else "-"), name
        if kind.threshold is not None and kind.threshold > 0:
            assert float(re.findall(r"[0-9.]+", limit)[0]) == kind.threshold, name


def test_every_alert_has_its_runbook_section() -> None:
    anchors = set(re.findall(r"^### (\S+)$", PAGE, flags=re.MULTILINE))
    operator_alerts = {rule["alert"] for group in OPERATOR_RULES for rule in group["rules"]}
    assert {name.lower() for name in (*ALERTS, *operator_alerts)} <= anchors
    for group in OPERATOR_RULES:
        for rule in group["rules"]:
            assert rule["annotations"]["runbook_url"].endswith(f"#{rule['alert'].lower()}")
