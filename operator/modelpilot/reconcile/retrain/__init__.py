"""RetrainPolicy decisions, one module per concern: triggers, the gate, the builders of Jobs and
canaries, the records a run leaves; ``decide`` puts them together."""

from .builders import build_canary, build_training_job
from .decide import RetrainDecision, decide_retrain
from .gate import compare_with_champion
from .observations import (
    APPROVE_ANNOTATION,
    CHALLENGER_ALIAS,
    MANUAL_ANNOTATION,
    MODEL_ARTIFACT,
    ROLLBACK_ANNOTATION,
    RUN_TAG,
    CreateCanary,
    CreateJob,
    JobCondition,
    JobView,
    MonitorView,
    RegisterCandidate,
    RetrainAction,
    RetrainObservations,
    RunView,
    VersionView,
    champion_alias,
    job_view,
    monitor_view,
)
from .records import history_rows

__all__ = [
    "APPROVE_ANNOTATION",
    "CHALLENGER_ALIAS",
    "MANUAL_ANNOTATION",
    "MODEL_ARTIFACT",
    "ROLLBACK_ANNOTATION",
    "RUN_TAG",
    "CreateCanary",
    "CreateJob",
    "JobCondition",
    "JobView",
    "MonitorView",
    "RegisterCandidate",
    "RetrainAction",
    "RetrainDecision",
    "RetrainObservations",
    "RunView",
    "VersionView",
    "build_canary",
    "build_training_job",
    "champion_alias",
    "compare_with_champion",
    "decide_retrain",
    "history_rows",
    "job_view",
    "monitor_view",
]
