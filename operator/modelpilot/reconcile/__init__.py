"""Decisions: from a spec, its status and observations to a new status, actions and Events,
without I/O. Every kind's tick decides through one shape (``Decision``); each kind has its own
package (``monitor``, ``retrain``, ``canary``)."""

from .admission import Admission, admission_patch, admit
from .conditions import changed_conditions, find_condition, set_condition
from .decision import HISTORY_LIMIT, MESSAGE_LIMIT, Decision, EventToPost, backoff, newest
from .owners import MonitorRef, OwnerRef, PolicyRef, ReleaseRef
from .patch import merge_patch

__all__ = [
    "HISTORY_LIMIT",
    "MESSAGE_LIMIT",
    "Admission",
    "Decision",
    "EventToPost",
    "MonitorRef",
    "OwnerRef",
    "PolicyRef",
    "ReleaseRef",
    "admission_patch",
    "admit",
    "backoff",
    "changed_conditions",
    "find_condition",
    "merge_patch",
    "newest",
    "set_condition",
]
