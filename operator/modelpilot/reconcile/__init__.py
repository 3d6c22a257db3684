"""Decisions: from a spec and observations to a new status and a list of actions, without I/O."""

from .admission import Admission, admit
from .conditions import changed_conditions, find_condition, set_condition
from .patch import merge_patch

__all__ = ["Admission", "admit", "changed_conditions", "find_condition", "merge_patch", "set_condition"]
