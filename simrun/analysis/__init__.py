"""Analysis: align Captures and measure their differences (compare), judge them
(policy). Knows nothing about where a Capture came from; imports only the base
modules (simrun.errors, simrun.capture, simrun.model).
"""
