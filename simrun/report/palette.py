"""The colours error and cause are drawn in, shared by report.html's graph and the Model
Explorer overlays so that one layer looks the same in both."""
from __future__ import annotations

NO_DATA = "#eeeeee"                         # not compared / not isolated / not counted

# Integer steps: exact, one step (the usual rounding difference), a few, many.
_STEPS = ((0, "#e8f5e9"), (1, "#fff3b0"), (3, "#ffcc80"), (15, "#ef9a9a"))
_STEPS_TOP = "#e53935"
# Float units: by order of magnitude (float layers differ by ulps, not steps).
_FLOAT = ((0.0, "#e8f5e9"), (1e-6, "#fff3b0"), (1e-4, "#ffcc80"), (1e-2, "#ef9a9a"))

CAUSE_COLOURS = {
    "kernel": "#d32f2f",                    # the layer computes differently itself
    "rounding": "#f57c00",
    "float-contraction": "#0288d1",
    "amplified": "#8e24aa",
    "both-sides": "#6d4c41",                # each side differs from the reference for its own cause
    "unexplained": "#fbc02d",
    "inherited": "#90a4ae",                 # passes on what came in
    "none": "#c8e6c9",
}

CAUSE_MEANING = {
    "kernel": "the operator itself computes differently (own error persists in the other rounding)",
    "rounding": "own error vanishes with the other requantization rounding",
    "float-contraction": "own error vanishes with firmware built -ffp-contract=off",
    "amplified": "a value-wise operator magnifies the difference it was given",
    "both-sides": "both sides differ from the reference, each for its own known cause",
    "unexplained": "own error, no variant tried removes it",
    "inherited": "no own error: it passes on what its inputs (or its state) differ by",
    "none": "no difference",
}


def error_colour(delta: float | None, integer: bool) -> str:
    if delta is None:
        return NO_DATA
    for limit, colour in (_STEPS if integer else _FLOAT):
        if delta <= limit:
            return colour
    return _STEPS_TOP


def error_legend(integer: bool) -> list[tuple[str, str]]:
    """(colour, what it means) from exact to large."""
    if integer:
        return [(_STEPS[0][1], "0"), (_STEPS[1][1], "1 step"), (_STEPS[2][1], "2–3"),
                (_STEPS[3][1], "4–15"), (_STEPS_TOP, ">15 steps")]
    return [(_FLOAT[0][1], "0"), (_FLOAT[1][1], "≤1e-6"), (_FLOAT[2][1], "≤1e-4"),
            (_FLOAT[3][1], "≤1e-2"), (_STEPS_TOP, ">1e-2")]


def impact_colour(share: float | None) -> str:
    """Share of the tensor's range (0.01 = 1 %)."""
    if share is None:
        return NO_DATA
    for limit, colour in ((0.0, "#e8f5e9"), (0.005, "#fff3b0"), (0.02, "#ffcc80"), (0.1, "#ef9a9a")):
        if share <= limit:
            return colour
    return _STEPS_TOP


def count_colour(value: float, top: float) -> str:
    """White to dark blue by share of the largest count (instructions)."""
    f = 0.0 if top <= 0 else max(0.0, min(1.0, value / top))
    r, g, b = (int(255 + (t - 255) * f) for t in (0x15, 0x65, 0xc0))
    return f"#{r:02x}{g:02x}{b:02x}"
