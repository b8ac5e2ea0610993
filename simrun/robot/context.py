"""The state the keyword components share, one copy per suite, and the helpers
they all use. SimrunLibrary inherits it, so every component reaches the same
state through its `ctx` (the library instance), as SeleniumLibrary's components do.
"""
from __future__ import annotations

import numpy as np
from robot.api import logger

from ..capture import Capture
from ..errors import BackendError, SimrunError
from ..model import Model


class LibraryState:
    """Current firmware, session, model, input, captures and comparison."""

    def _init_state(self) -> None:
        self._firmware = None         # (elf Path, cpu, kernels label or None)
        self._session = None
        self._model: Model | None = None
        self._fixture_model = None    # simrun.device.fixture.FixtureModel, when one is loaded
        self._inputs: list[np.ndarray] | None = None
        self._captures: dict[str, Capture] = {}
        self._last_label: str | None = None
        self._backend_errors: dict[str, str] = {}
        self._run = None              # simrun.analysis.compare.DiffRun of the last comparison
        self._count_instructions = False   # `Count Instructions`: target runs count per operator

    # --- lifetime ---------------------------------------------------------------
    def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.__exit__(None, None, None)

    def _forget_results(self) -> None:
        """Inputs, captures, backend errors and comparisons belong to one model."""
        self._inputs = None
        self._captures.clear()
        self._last_label = None
        self._backend_errors.clear()
        self._run = None

    # --- captures -----------------------------------------------------------------
    def _store(self, cap: Capture, label: str | None = None) -> None:
        label = label or cap.backend
        self._captures[label] = cap
        self._last_label = label
        logger.info(f"{label}: {len(cap.ops)} operators captured, {len(cap.outputs)} outputs")

    def _capture(self, label: str | None) -> Capture:
        label = label or self._last_label
        if label is None:
            raise SimrunError("no capture yet: run Run Inference or Run Backend first")
        try:
            return self._captures[label]
        except KeyError:
            known = ", ".join(self._captures) or "(none)"
            raise SimrunError(f"no capture labelled {label!r}; have: {known}") from None

    def _run_backend(self, name: str) -> Capture:
        """Run one backend on the current model and input; a failure is recorded and re-raised."""
        from ..backends import run_backend
        model = self._require_model()
        try:
            # Target backends count instructions once `Count Instructions` asked for it.
            count = {"count_instructions": True} if self._count_instructions and name.startswith("target:") else {}
            cap = run_backend(name, model.path, [self._require_inputs()], **count)[0]
        except BackendError as err:
            self._backend_errors[name] = err.message
            raise
        self._backend_errors.pop(name, None)
        self._store(cap, name)
        return cap

    def _check_layer_count(self, count: int, label: str | None) -> None:
        cap = self._capture(label)
        if len(cap.ops) != count:
            raise AssertionError(f"{cap.backend}: {len(cap.ops)} layers captured, expected {count}")

    # --- what a keyword needs first -------------------------------------------------
    def _require_model(self) -> Model:
        if self._model is None:
            raise SimrunError("no model: call Load Model first")
        return self._model

    def _require_inputs(self) -> list[np.ndarray]:
        if self._inputs is None:
            raise SimrunError("no input: call Set Input From File, Set Random Input or Set Input Array first")
        return self._inputs

    def _require_session(self):
        if self._session is None:
            raise SimrunError("no emulator session: call Start Emulator Session first")
        return self._session

    def _require_run(self):
        if self._run is None:
            raise SimrunError("no comparison: call Compare Variants or Compare Captures first")
        return self._run

    def _pair(self, a: str | None, b: str | None):
        pairs = [p for c in self._require_run().comparisons for p in c.pairs]
        if a or b:
            pairs = [p for p in pairs if {p.a, p.b} >= {x for x in (a, b) if x}]
        if len(pairs) != 1:
            names = ", ".join(f"{p.a} vs {p.b}" for p in pairs) or "(none)"
            raise SimrunError(f"name one pair with a= and b=; the comparison has: {names}")
        return pairs[0]

    def _verdict(self, policy: str | None):
        from ..analysis.policy import Policy
        return Policy.load(policy).evaluate(self._require_run())


def assert_arrays_equal(actual, expected, msg: str | None = None) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape or a.dtype != e.dtype or not np.array_equal(a, e):
        diff = ""
        if a.shape == e.shape:
            bad = np.flatnonzero(a != e)
            diff = f"; {bad.size} of {a.size} values differ, first at flat index {bad[0]}" if bad.size else ""
        raise AssertionError(msg or f"arrays differ: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}{diff}")


class Component:
    """A group of keywords; `ctx` is the library, which holds the shared state."""

    def __init__(self, ctx: LibraryState):
        self.ctx = ctx
