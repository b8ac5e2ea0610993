"""The state the keyword components share, one copy per suite, and the helpers
they all use. SimrunLibrary owns one SuiteContext and hands it to every component
as `ctx`; components use its public attributes and methods only (as SeleniumLibrary's
components use the public state of their context object).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from robot.api import logger

from ..capture import Capture
from ..errors import BackendError, SimrunError
from ..model import Model
from ..analysis.compare import PairResult
from ..analysis.result import DiffResult

if TYPE_CHECKING:                       # the Session loads emulator code: import it when used
    from ..device.session import Session


class CurrentFirmware(NamedTuple):
    """The firmware `Start Emulator Session` runs."""
    elf: Path
    cpu: str
    kernels: str | None             # names the variant in capture labels; None: from the ELF's metadata


class SuiteContext:
    """Current firmware, session, model, input, captures and the last comparison's result.

    Components read and set these attributes and call these methods; nothing else of the
    library is shared between them."""

    def __init__(self) -> None:
        self.firmware: CurrentFirmware | None = None
        self.session: Session | None = None
        self.model: Model | None = None
        self.fixture_model = None     # simrun.device.fixture.FixtureModel, when one is loaded
        self.inputs: list[np.ndarray] | None = None
        self.captures: dict[str, Capture] = {}
        self.last_label: str | None = None
        self.backend_errors: dict[str, str] = {}
        self.backend_error_codes: dict[str, int] = {}
        self.result: DiffResult | None = None   # of the last comparison, judged by the default policy
        self.count_instructions = False  # `Count Instructions`: target runs count per operator
        self.task = None                 # simrun.analysis.tasks.TaskSpec from `Set Task`, or None

    # --- lifetime ---------------------------------------------------------------
    def stop_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.__exit__(None, None, None)

    def forget_results(self) -> None:
        """Inputs, captures, backend errors and comparisons belong to one model."""
        self.inputs = None
        self.captures.clear()
        self.last_label = None
        self.backend_errors.clear()
        self.backend_error_codes.clear()
        self.result = None

    # --- captures -----------------------------------------------------------------
    def store(self, cap: Capture, label: str | None = None) -> None:
        label = label or cap.backend
        self.captures[label] = cap
        self.last_label = label
        logger.info(f"{label}: {len(cap.ops)} operators captured, {len(cap.outputs)} outputs")

    def capture(self, label: str | None) -> Capture:
        label = label or self.last_label
        if label is None:
            raise SimrunError("no capture yet: run Run Inference or Run Backend first")
        try:
            return self.captures[label]
        except KeyError:
            known = ", ".join(self.captures) or "(none)"
            raise SimrunError(f"no capture labelled {label!r}; have: {known}") from None

    def run_backend(self, name: str) -> Capture:
        """Run one backend on the current model and input; a failure is recorded and re-raised."""
        from ..backends import run_backend
        from ..run_options import RunOptions
        model = self.require_model()
        try:
            # Target backends count instructions once `Count Instructions` asked for it.
            options = RunOptions(count_instructions=self.count_instructions)
            cap = run_backend(name, model.path, [self.require_inputs()], options)[0]
        except BackendError as err:
            self.backend_errors[name] = err.message
            self.backend_error_codes[name] = err.exit_code
            raise
        self.backend_errors.pop(name, None)
        self.backend_error_codes.pop(name, None)
        self.store(cap, name)
        return cap

    def check_layer_count(self, count: int, label: str | None) -> None:
        cap = self.capture(label)
        if len(cap.ops) != count:
            raise AssertionError(f"{cap.backend}: {len(cap.ops)} layers captured, expected {count}")

    # --- comparing: the pipeline's way from Captures on ------------------------------
    def compare(self, labels, *, diagnose_against: str | None = None, progress=None) -> DiffResult:
        """Compare the stored captures of `labels` (and, with `diagnose_against`, diagnose them
        against that reference) through simrun.pipeline.diff_matrix; the result becomes the
        last comparison."""
        from ..backends import MatrixResult
        from ..pipeline import diff_matrix
        caps = {label: self.capture(label) for label in labels}
        matrix = MatrixResult(captures={label: [cap] for label, cap in caps.items()},
                              errors=dict(self.backend_errors), seconds={},
                              versions={label: dict(cap.versions) for label, cap in caps.items()},
                              error_codes=dict(self.backend_error_codes))
        diagnose = diagnose_against is not None
        self.result = diff_matrix(self.require_model(), ["input0"], matrix,
                                  samples=[self.require_inputs()] if diagnose else None,
                                  reference=diagnose_against, diagnose=diagnose, progress=progress,
                                  task=self.task)
        return self.result

    # --- what a keyword needs first -------------------------------------------------
    def require_model(self) -> Model:
        if self.model is None:
            raise SimrunError("no model: call Load Model first")
        return self.model

    def require_inputs(self) -> list[np.ndarray]:
        if self.inputs is None:
            raise SimrunError("no input: call Set Input From File, Set Random Input or Set Input Array first")
        return self.inputs

    def require_session(self) -> Session:
        if self.session is None:
            raise SimrunError("no emulator session: call Start Emulator Session first")
        return self.session

    def require_result(self) -> DiffResult:
        if self.result is None:
            raise SimrunError("no comparison: call Compare Variants or Compare Captures first")
        return self.result

    def pair(self, a: str | None, b: str | None) -> PairResult:
        pairs = [p for c in self.require_result().run.comparisons for p in c.pairs]
        if a or b:
            pairs = [p for p in pairs if {p.a, p.b} >= {x for x in (a, b) if x}]
        if len(pairs) != 1:
            names = ", ".join(f"{p.a} vs {p.b}" for p in pairs) or "(none)"
            raise SimrunError(f"name one pair with a= and b=; the comparison has: {names}")
        return pairs[0]

    def judged(self, policy: str | None) -> DiffResult:
        """The last comparison judged by the policy file `policy` (None: the built-in one)."""
        result = self.require_result()
        if policy is None:
            return result
        from ..analysis.policy import Policy
        from ..analysis.result import judge
        return judge(result.run, Policy.load(policy))


def assert_arrays_equal(actual, expected, msg: str | None = None) -> None:
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape or a.dtype != e.dtype or not np.array_equal(a, e):
        diff = ""
        if a.shape == e.shape:
            bad = np.flatnonzero(a != e)
            diff = f"; {bad.size} of {a.size} values differ, first at flat index {bad[0]}" if bad.size else ""
        raise AssertionError(msg or f"arrays differ: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}{diff}")


class Component:
    """A group of keywords; `ctx` is the suite's SuiteContext, the state they share."""

    def __init__(self, ctx: SuiteContext):
        self.ctx = ctx
