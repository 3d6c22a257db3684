"""`make demo --once` tells the whole story on its own stack: drift seen, retrain fired, a Job
trained, a version registered that beats the champion, a canary walked and promoted, a worse
candidate rolled back with its reason, an alert delivered, and the timeline."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support.kube import REPO

# Alone on 2 cores the story takes about 2.5 minutes; the rest is room for a busy machine.
TIMEOUT_S = 420


def test_demo_tells_the_story_from_drift_to_promotion_rollback_and_alert() -> None:
    # Its own control plane: a cluster in KUBECONFIG (the suite's) is not the demo's to use.
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    ran = subprocess.run(
        [sys.executable, "-m", "tests.support.demo", "--once"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    out = ran.stdout
    assert ran.returncode == 0, f"{out[-6000:]}\n{ran.stderr[-4000:]}"
    headlines = re.findall(r"^\[(\d)/8\] ", out, re.MULTILINE)
    assert headlines == [str(n) for n in range(1, 9)], headlines

    assert re.search(r"accuracy of version 3 is 0\.8\d\d, below 0\.9", out)
    assert "3/6 features drift: age, amount, merchant" in out
    assert "trigger performance: performance: accuracy" in out
    assert re.search(r"Job fraud-detector-1-1 exited 0: MLflow run \w+, test accuracy", out)
    assert "version 4 registered; passed the gate against champion 3" in out
    for step in ("step 1/3: 20%", "step 2/3: 50%", "step 3/3: 100%"):
        assert step in out
    assert "fraud-detector-v4 promoted version 4" in out
    assert "MLflow alias champion: version 3 -> 4" in out
    assert "Deployment fraud-detector restarted and serves version 4" in out
    assert "version 5 registered; passed the gate against champion 4" in out
    assert re.search(r"fraud-detector-v5 RolledBack: accuracy failed at step \d/3 \(\d+% traffic\)", out)
    assert "MLflow alias champion stays on version 4" in out
    assert "alert ModelAccuracyLow (critical) delivered to the receiver" in out
    assert re.search(r"labels: .*model=fraud-detector.*namespace=modelpilot-demo.*severity=critical", out)

    timeline = out[out.index("\nTimeline\n") :]
    for phase in ("1 monitor", "2 trigger", "3 training", "4 gate", "5 canary", "6 promotion", "7 rollback", "8 alert"):
        assert f"\n  {phase} " in timeline, phase
    assert out.rstrip().splitlines()[-1].lstrip().startswith("end")
    assert "the story is told" in out.rstrip().splitlines()[-1]
