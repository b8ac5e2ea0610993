"""The one way through that every interface runs: backends -> compare -> diagnose -> policy
(reports stay with their owners). See simrun/pipeline/diff.py."""
from .diff import choose_reference, diagnose_matrix, diff_matrix, diff_run  # noqa: F401
