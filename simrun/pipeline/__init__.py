"""The one way through that every interface runs: backends -> compare -> diagnose
(policy and reports stay with their owners). See simrun/pipeline/diff.py."""
from .diff import choose_reference, diagnose_matrix, diff_run, matrix_run  # noqa: F401
