"""Robot Framework keywords over simrun's Python API.

Import in a suite as ``Library    simrun.robot.SimrunLibrary``. Every keyword
is a thin call into simrun (build, session, backends, compare, policy,
report); this module only converts arguments, keeps the current firmware /
model / input / captures between keywords, and turns results into
assertions.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from robot.api import SkipExecution, logger
from robot.api.deco import keyword

from simrun.capture import Capture
from simrun.errors import BackendError, SimrunError
from simrun.model import Model


class SimrunLibrary:
    """Tensor-level keywords for testing TFLM deployments on emulated Cortex-M cores.

    The library keeps a small amount of state between keywords, one copy per
    suite (it carries over from one test to the next): the current firmware (`Build Firmware`, `Use Firmware`,
    `Build Fixture Firmware`), the emulator session (`Start Emulator Session`),
    the model (`Load Model`), the input (`Set Input From File`,
    `Set Random Input`, `Set Input Array`), the captures of every run keyed by
    label (`Run Inference`, `Run Backend`), and the last comparison
    (`Compare Variants`, `Compare Captures`) that the assertions check.

    Captures are labelled like simrun's backends: ``tflite-optimized``,
    ``tflite-reference``, ``tflm-host`` and ``target:<cpu>:<kernels>`` such as
    ``target:cortex-m55:cmsis-nn``.

    A layer is named as ``<subgraph>:<operator>`` (``0:3``), as an operator
    index in subgraph 0 (``3``), or as the name of an output tensor.

    Any emulator still running is stopped when the suite ends, whether or not
    the suite calls `Stop Emulator Session`.

    = Example =
    | *** Settings ***
    | Library    simrun.robot.SimrunLibrary
    |
    | *** Test Cases ***
    | Host TFLM Agrees With TFLite Reference
    |     Load Model    ${CURDIR}/../../shared/models/hello_world_int8.tflite
    |     Set Random Input    seed=1
    |     Compare Variants    tflite-reference    tflm-host
    |     Layer Mismatch Ratio Should Be Below    0.01
    |     Outputs Should Match Within Policy
    """

    ROBOT_LIBRARY_SCOPE = "SUITE"
    ROBOT_LIBRARY_DOC_FORMAT = "ROBOT"
    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self):
        self.ROBOT_LIBRARY_LISTENER = self
        self._firmware = None         # (elf Path, cpu, kernels label or None)
        self._session = None
        self._model: Model | None = None
        self._fixture_model = None    # simrun.target.fixture.FixtureModel, when one is loaded
        self._inputs: list[np.ndarray] | None = None
        self._captures: dict[str, Capture] = {}
        self._last_label: str | None = None
        self._backend_errors: dict[str, str] = {}
        self._run = None              # simrun.analysis.compare.DiffRun of the last comparison

    # --- listener: the library itself stops what it started -----------------
    def _end_suite(self, data, result):
        self._stop_session()

    def _close(self):
        self._stop_session()

    # --- firmware -------------------------------------------------------------
    def build_firmware(self, cpu: str, kernels: str = "reference") -> str:
        """Builds (or takes from the build cache) the TFLM firmware for ``cpu`` and ``kernels``.

        ``kernels`` is ``reference`` or ``cmsis-nn``. Needs the TFLM source
        trees (``SIMRUN_SOURCES_DIR``) or network access; see
        `Skip Unless TFLM Sources`. The firmware becomes the one that
        `Start Emulator Session` runs. Returns the ELF path.

        Example:
        | ${elf} =    Build Firmware    cortex-m55    cmsis-nn
        """
        from simrun.target.build import ensure_firmware
        fw = ensure_firmware(cpu, kernels, progress=logger.info)
        self._firmware = (Path(fw.elf), cpu, kernels)
        logger.info(f"firmware {cpu}/{kernels}: {fw.elf}")
        return str(fw.elf)

    def build_fixture_firmware(self, cpu: str = "cortex-m3") -> str:
        """Builds simrun's own fixture firmware for ``cpu`` and makes it the current firmware.

        The fixture implements the same ABI as the TFLM firmware but runs a
        small deterministic int8 computation of its own, so it needs only
        arm-none-eabi-gcc, not the TFLM sources. Returns the ELF path.

        Example:
        | Build Fixture Firmware    cortex-m3
        """
        from simrun.target import fixture
        elf = fixture.build_fixture(cpu)
        self._firmware = (Path(elf), cpu, "fixture")
        return str(elf)

    def use_firmware(self, elf: str, cpu: str, kernels: str | None = None) -> None:
        """Makes an existing firmware ELF the current firmware.

        ``cpu`` selects the emulated board. ``kernels`` names the variant in
        capture labels; by default it comes from the build metadata beside
        the ELF.

        Example:
        | Use Firmware    ${CURDIR}/firmware.elf    cortex-m4    cmsis-nn
        """
        path = Path(elf)
        if not path.is_file():
            raise SimrunError(f"firmware ELF not found: {path}")
        self._firmware = (path, cpu, kernels)

    # --- emulator session -----------------------------------------------------
    def start_emulator_session(self, emulator: str = "qemu", timeout: float = 120.0,
                               arena_limit: int | None = None) -> None:
        """Starts the emulator with the current firmware; stops any session already running.

        A ``.tflite`` model read before with `Load Model` is loaded into the
        new session; a fixture model is not (call `Load Fixture Model` after
        this keyword).

        ``timeout`` is the wall-clock budget in seconds for each step inside
        the emulator; when it runs out the emulator is killed and the keyword
        fails with ``EmulatorTimeout``. ``arena_limit`` (bytes) makes the
        firmware use only part of its tensor arena.

        Example:
        | Start Emulator Session    timeout=20
        | [Teardown]    Stop Emulator Session
        """
        if self._firmware is None:
            raise SimrunError("no firmware: call Build Firmware, Build Fixture Firmware or Use Firmware first")
        from simrun.target.targets import target_label
        from simrun.target.session import Session
        self._stop_session()
        elf, cpu, kernels = self._firmware
        session = Session(elf, cpu=cpu, emulator=emulator, timeout=timeout, arena_limit=arena_limit,
                          label=target_label(cpu, kernels) if kernels else None)
        self._session = session.__enter__()
        if self._model is not None:
            self._session.load_model(self._model)

    def stop_emulator_session(self) -> None:
        """Stops the emulator session, if one is running. Safe to call twice.

        Example:
        | [Teardown]    Stop Emulator Session
        """
        self._stop_session()

    def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.__exit__(None, None, None)

    # --- model and input --------------------------------------------------------
    def load_model(self, path: str) -> None:
        """Reads a ``.tflite`` model; also loads it into the running session, if any.

        Forgets the input, captures, backend errors and comparison of the
        previous model.

        A model too large for the firmware, an unsupported operator or an
        arena that is too small fails here with the matching error
        (``ModelTooLarge``, ``UnsupportedOperator``, ``ArenaTooSmall``).

        Example:
        | Load Model    ${CURDIR}/../../shared/models/person_detect.tflite
        """
        self._model = Model.from_file(Path(path).resolve())
        self._fixture_model = None
        self._forget_results()
        if self._session is not None:
            self._session.load_model(self._model)

    def load_fixture_model(self, extra_layer: str = "none", seed: int = 0, input_len: int = 64) -> None:
        """Loads the fixture firmware's demo network into the running session.

        The demo network is dense -> relu -> dense on ``input_len`` int8
        values, with weights drawn from ``seed``. ``extra_layer`` appends one
        more layer: ``fault`` (the firmware faults on purpose, expect
        ``TargetFault``), ``hang`` (it loops forever, expect
        ``EmulatorTimeout``) or ``none``. Needs `Build Fixture Firmware` and
        `Start Emulator Session` first.

        Example:
        | Load Fixture Model    extra_layer=fault
        """
        from simrun.target import fixture
        extra = {"none": [], "fault": [fixture.Layer(fixture.KIND_FAULT)],
                 "hang": [fixture.Layer(fixture.KIND_HANG)]}
        if extra_layer not in extra:
            raise SimrunError(f"extra_layer must be one of {', '.join(extra)}, not {extra_layer!r}")
        if self._session is None:
            raise SimrunError("no emulator session: call Start Emulator Session first")
        model = fixture.demo_model(input_len, seed=seed, extra=extra[extra_layer])
        self._model, self._fixture_model = None, model
        self._forget_results()
        self._session.load_model(model.to_bytes(), raw=True)

    def fixture_reference_outputs(self) -> list:
        """Returns every layer's output for the current input as computed by the fixture's numpy model.

        Example:
        | @{expected} =    Fixture Reference Outputs
        """
        from simrun.target import fixture
        if self._fixture_model is None:
            raise SimrunError("no fixture model: call Load Fixture Model first")
        return fixture.reference(self._fixture_model, self._require_inputs()[0])

    def captured_layers_should_equal_fixture_reference(self, label: str | None = None) -> None:
        """Checks that every captured layer equals the fixture's numpy model, bit for bit.

        Example:
        | Run Inference
        | Captured Layers Should Equal Fixture Reference
        """
        expected = self.fixture_reference_outputs()
        cap = self._capture(label)
        self.captured_layer_count_should_be(len(expected), label)
        for rec, want in zip(cap.ops, expected):
            self.arrays_should_be_equal(rec.outputs[0].values, want,
                                        f"{cap.backend}: layer {rec.subgraph}:{rec.index} {rec.op_name} "
                                        f"differs from the fixture reference")

    def set_input_from_file(self, path: str) -> None:
        """Uses the input in ``path``: ``.npy``, ``.npz`` or an image.

        Images are resized and quantized with the model's input parameters.
        A file that holds several inputs uses the first. For a fixture model
        (`Load Fixture Model`) the file is a ``.npy`` of int8 values.

        Example:
        | Set Input From File    ${CURDIR}/data/person.png
        """
        self._set_inputs(str(path))

    def set_random_input(self, seed: int = 0) -> None:
        """Uses seeded random data within the range of every model input.

        Example:
        | Set Random Input    seed=42
        """
        self._set_inputs(f"random:{seed}")

    def set_input_array(self, *arrays) -> None:
        """Uses the given numpy arrays, one per model input, as the input.

        Example:
        | ${x} =    Evaluate    numpy.zeros((1, 1), dtype=numpy.int8)    numpy
        | Set Input Array    ${x}
        """
        if self._fixture_model is None:
            self._require_model()
        self._inputs = [np.asarray(a) for a in arrays]

    def _forget_results(self) -> None:
        """Inputs, captures, backend errors and comparisons belong to one model."""
        self._inputs = None
        self._captures.clear()
        self._last_label = None
        self._backend_errors.clear()
        self._run = None

    def _set_inputs(self, spec: str) -> None:
        if self._fixture_model is not None:
            self._inputs = [_fixture_input(self._fixture_model, spec)]
            return
        from simrun.inputs import load_inputs
        self._inputs = load_inputs(self._require_model(), [spec])[0]

    # --- running ------------------------------------------------------------------
    def run_inference(self, capture_layers: bool = True) -> Capture:
        """Runs one inference of the current input in the emulator session.

        With ``capture_layers`` (default) the emulator stops after every
        operator and the outputs of every layer are read back; otherwise only
        the model's final outputs. The capture is stored under its label
        (``target:<cpu>:<kernels>``) and returned. A fault in the firmware
        fails with ``TargetFault``, a run longer than the session timeout
        with ``EmulatorTimeout``.

        Example:
        | Run Inference
        | Run Inference    capture_layers=False
        """
        if self._session is None:
            raise SimrunError("no emulator session: call Start Emulator Session first")
        cap = self._session.invoke(self._require_inputs(), capture_layers=capture_layers)
        self._store(cap)
        return cap

    def get_target_input(self, index: int = 0) -> np.ndarray:
        """Returns model input ``index`` as it is in the emulated target's memory now.

        After `Run Inference` this shows what the firmware actually read.

        Example:
        | Run Inference
        | ${seen} =    Get Target Input
        | Arrays Should Be Equal    ${seen}    ${sent}
        """
        if self._session is None:
            raise SimrunError("no emulator session: call Start Emulator Session first")
        return self._session.read_input(index)

    def run_should_fail_with(self, error: str, message: str = "", capture_layers: bool = True) -> str:
        """Runs `Run Inference` and expects it to fail with ``error`` whose message contains ``message``.

        ``error`` is the simrun error class name, e.g. ``TargetFault`` or
        ``EmulatorTimeout``. Returns the error message. The same check can be
        written with BuiltIn's ``Run Keyword And Expect Error``, because Robot
        shows these errors as ``<ErrorClass>: <message>``.

        Example:
        | Run Should Fail With    TargetFault    in operator 0:3 FIXTURE_FAULT
        | Run Keyword And Expect Error    EmulatorTimeout: *    Run Inference
        """
        try:
            self.run_inference(capture_layers=capture_layers)
        except SimrunError as err:
            kind = type(err).__name__
            if kind != error or message not in str(err):
                raise AssertionError(f"expected {error} with '{message}', got {kind}: {err}") from None
            logger.info(f"failed as expected: {kind}: {err}")
            return str(err)
        raise AssertionError(f"expected {error} with '{message}', but the inference succeeded")

    def run_backend(self, name: str) -> Capture:
        """Runs the current model and input on one backend and stores its capture under ``name``.

        ``name`` is ``tflite-optimized``, ``tflite-reference``, ``tflm-host``
        or ``target:<cpu>:<kernels>``. A backend that refuses the model or
        crashes fails this keyword with ``BackendError`` and is recorded, so
        `Backend Should Have Failed With` can check it afterwards.

        Example:
        | Run Backend    tflm-host
        | Run Keyword And Expect Error    *quantized_dimension*    Run Backend    tflite-reference
        """
        from simrun.backends import run_backend
        model = self._require_model()
        try:
            cap = run_backend(name, model.path, [self._require_inputs()])[0]
        except BackendError as err:
            self._backend_errors[name] = err.message
            raise
        self._backend_errors.pop(name, None)
        self._store(cap, name)
        return cap

    def _store(self, cap: Capture, label: str | None = None) -> None:
        label = label or cap.backend
        self._captures[label] = cap
        self._last_label = label
        logger.info(f"{label}: {len(cap.ops)} operators captured, {len(cap.outputs)} outputs")

    # --- reading captures -----------------------------------------------------------
    def get_layer_output(self, layer: str, label: str | None = None, output: int = 0) -> np.ndarray:
        """Returns one output tensor of one layer as a numpy array.

        ``layer`` is ``<subgraph>:<operator>``, an operator index in
        subgraph 0, or an output tensor name. ``label`` selects the capture
        (default: the last one stored); ``output`` the operator's output
        number.

        Example:
        | ${conv} =    Get Layer Output    0:0
        | ${same} =    Get Layer Output    MobilenetV1/Conv2d_0/Relu6    label=tflm-host
        """
        cap = self._capture(label)
        for rec in cap.ops:
            for t in rec.outputs:
                if t.name == layer:
                    return t.values
        sg, _, idx = layer.rpartition(":")
        try:
            key = (int(sg or 0), int(idx))
        except ValueError:
            raise SimrunError(f"{cap.backend}: no layer or output tensor named {layer!r}") from None
        try:
            outputs = cap.op(*key).outputs
        except KeyError as err:
            raise SimrunError(str(err.args[0])) from None
        if not 0 <= output < len(outputs):
            raise SimrunError(f"{cap.backend}: layer {layer} has {len(outputs)} outputs, no output {output}")
        return outputs[output].values

    def get_model_output(self, label: str | None = None, output: int = 0) -> np.ndarray:
        """Returns one of the model's final outputs from a capture as a numpy array.

        Example:
        | ${scores} =    Get Model Output
        """
        cap = self._capture(label)
        if not 0 <= output < len(cap.outputs):
            raise SimrunError(f"{cap.backend}: the capture has {len(cap.outputs)} outputs, no output {output}")
        return cap.outputs[output].values

    def captured_layer_count_should_be(self, count: int, label: str | None = None) -> None:
        """Checks how many operators a capture holds.

        Example:
        | Captured Layer Count Should Be    4
        """
        cap = self._capture(label)
        if len(cap.ops) != count:
            raise AssertionError(f"{cap.backend}: {len(cap.ops)} layers captured, expected {count}")

    def arrays_should_be_equal(self, actual, expected, msg: str | None = None) -> None:
        """Checks that two arrays have the same shape, dtype and values.

        Example:
        | Arrays Should Be Equal    ${target}    ${reference}
        """
        a, e = np.asarray(actual), np.asarray(expected)
        if a.shape != e.shape or a.dtype != e.dtype or not np.array_equal(a, e):
            diff = ""
            if a.shape == e.shape:
                bad = np.flatnonzero(a != e)
                diff = f"; {bad.size} of {a.size} values differ, first at flat index {bad[0]}" if bad.size else ""
            raise AssertionError(msg or f"arrays differ: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}{diff}")

    def save_capture(self, path: str, label: str | None = None) -> str:
        """Saves a capture as ``.npz`` (simrun's capture format). Returns the path.

        Example:
        | Save Capture    ${OUTPUT DIR}/target.npz
        """
        return str(self._capture(label).save(path))

    def _capture(self, label: str | None) -> Capture:
        label = label or self._last_label
        if label is None:
            raise SimrunError("no capture yet: run Run Inference or Run Backend first")
        try:
            return self._captures[label]
        except KeyError:
            known = ", ".join(self._captures) or "(none)"
            raise SimrunError(f"no capture labelled {label!r}; have: {known}") from None

    # --- comparing ---------------------------------------------------------------------
    def compare_variants(self, *labels: str) -> None:
        """Runs every named backend on the current model and input, then compares them.

        A backend that fails is recorded (see `Backend Should Have Failed With`)
        and left out of the comparison; the others are still compared.

        Example:
        | Compare Variants    target:cortex-m55:reference    target:cortex-m55:cmsis-nn
        """
        ok = []
        for name in labels:
            try:
                self.run_backend(name)
                ok.append(name)
            except BackendError as err:
                logger.info(f"backend failed: {err}")
        self._compare(ok)

    def compare_captures(self, *labels: str) -> None:
        """Compares captures already stored (by `Run Inference` or `Run Backend`) layer by layer.

        With no labels, compares every capture stored so far. The result is
        what the assertions below and `Write Reports` use.

        Example:
        | Compare Captures    tflm-host    target:cortex-m55:reference
        """
        self._compare(labels or tuple(self._captures))

    def _compare(self, labels) -> None:
        from simrun.analysis.compare import DiffRun, compare
        caps = {label: self._capture(label) for label in labels}
        if len(caps) < 2 and not self._backend_errors:
            raise SimrunError(f"need at least two captures to compare, have: {', '.join(caps) or '(none)'}")
        model = self._require_model()
        comparisons = [compare(model, caps)] if len(caps) >= 2 else []
        self._run = DiffRun(model, comparisons=comparisons, backend_errors=dict(self._backend_errors),
                            versions={label: dict(c.versions) for label, c in caps.items()})

    # --- assertions ----------------------------------------------------------------------
    def layer_mismatch_ratio_should_be_below(self, max_ratio: float, a: str | None = None,
                                             b: str | None = None, layer: str | None = None) -> None:
        """Checks that the share of mismatched values is below ``max_ratio`` in every layer.

        ``a`` and ``b`` pick the compared pair (needed only when the last
        comparison has several pairs); ``layer`` restricts the check to one
        layer (``<subgraph>:<operator>`` or operator name such as ``CONV_2D``
        — all layers of that type).

        Example:
        | Layer Mismatch Ratio Should Be Below    0.05
        | Layer Mismatch Ratio Should Be Below    0.001    layer=0:2
        """
        pair = self._pair(a, b)
        layers = [s for s in pair.layers if _layer_matches(s, layer)]
        if not layers:
            raise SimrunError(f"{pair.name}: no layer matches {layer!r}")
        # A layer whose shape or dtype differs has no ratio; it cannot pass.
        bad = [f"{s.label} ({s.status})" if s.layout_differs else f"{s.label} mismatch {s.mismatch_ratio:.4f}"
               for s in layers if s.layout_differs or not s.mismatch_ratio < max_ratio]
        if bad:
            raise AssertionError(f"{pair.name}: mismatch ratio not below {max_ratio} in "
                                 f"{len(bad)} layer(s): " + "; ".join(bad))

    def first_divergent_layer_should_be(self, expected: str, a: str | None = None, b: str | None = None) -> None:
        """Checks the first layer where a pair differs: ``<subgraph>:<operator>`` or ``NONE``.

        Example:
        | First Divergent Layer Should Be    NONE
        | First Divergent Layer Should Be    0:1    tflm-host    target:cortex-m55:cmsis-nn
        """
        pair = self._pair(a, b)
        first = pair.first_divergent
        actual = "NONE" if first is None else f"{first.subgraph}:{first.op_index}"
        if actual != expected.upper():
            name = "" if first is None else f" ({first.label})"
            raise AssertionError(f"{pair.name}: first divergent layer is {actual}{name}, expected {expected}")

    def outputs_should_match_within_policy(self, policy: str | None = None) -> None:
        """Evaluates the last comparison against a tolerance policy file (default: simrun's).

        Fails with every violation the policy reports.

        Example:
        | Outputs Should Match Within Policy
        | Outputs Should Match Within Policy    ${CURDIR}/strict.toml
        """
        from simrun.report import terminal
        verdict = self._verdict(policy)
        logger.info(terminal.render(self._run, verdict))
        if not verdict.passed:
            raise AssertionError("policy failed: " + "; ".join(str(f) for f in verdict.failures))

    def backend_should_have_failed_with(self, backend: str, message: str) -> None:
        """Checks that ``backend`` failed and its error message contains ``message``.

        Example:
        | Backend Should Have Failed With    tflite-reference    quantized_dimension
        """
        if backend not in self._backend_errors:
            raise AssertionError(f"backend {backend} did not fail; failures: "
                                 f"{', '.join(self._backend_errors) or '(none)'}")
        got = self._backend_errors[backend]
        if message not in got:
            raise AssertionError(f"backend {backend} failed with {got!r}, which does not contain {message!r}")

    def write_reports(self, out_dir: str, policy: str | None = None) -> str:
        """Writes the reports of the last comparison (JSON, JUnit XML, HTML with plots) to ``out_dir``.

        Returns the directory.

        Example:
        | Write Reports    ${OUTPUT DIR}/simrun
        """
        from simrun import report
        run, verdict = self._require_run(), self._verdict(policy)
        files = report.write_reports(run, verdict, out_dir)
        logger.info(report.terminal.render(run, verdict))
        logger.info(f'<a href="{files["html"].resolve().as_uri()}">{files["html"]}</a>', html=True)
        return str(out_dir)

    @keyword("Skip Unless TFLM Sources")
    def skip_unless_tflm_sources(self) -> None:
        """Skips the current test unless local TFLM / CMSIS-NN source trees are available.

        Sources are given with the ``SIMRUN_SOURCES_DIR`` environment variable.

        Example:
        | [Setup]    Skip Unless TFLM Sources
        """
        from simrun.target import sources
        if sources.local_sources() is None:
            given = os.environ.get(sources.ENV_VAR)
            missing = f" ({given} lacks {', '.join(sources.missing_trees(Path(given)))})" if given else ""
            raise SkipExecution(f"needs local TFLM/CMSIS-NN source trees{missing}: {sources.HOW_TO_PROVIDE}")

    # --- helpers -------------------------------------------------------------------------
    def _require_model(self) -> Model:
        if self._model is None:
            raise SimrunError("no model: call Load Model first")
        return self._model

    def _require_inputs(self) -> list[np.ndarray]:
        if self._inputs is None:
            raise SimrunError("no input: call Set Input From File, Set Random Input or Set Input Array first")
        return self._inputs

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
        from simrun.analysis.policy import Policy
        return Policy.load(policy).evaluate(self._require_run())


def _layer_matches(stats, layer: str | None) -> bool:
    if layer is None:
        return True
    return layer in (stats.op_name, stats.tensor_name, f"{stats.subgraph}:{stats.op_index}",
                     str(stats.op_index) if stats.subgraph == 0 else None)


def _fixture_input(model, spec: str) -> np.ndarray:
    """The fixture is not a TFLite model, so simrun.inputs cannot read its input shape."""
    if spec.startswith("random:"):
        rng = np.random.default_rng(int(spec.split(":", 1)[1]))
        return rng.integers(-128, 128, (1, model.input_len), dtype=np.int8)
    if not spec.endswith(".npy"):
        raise SimrunError(f"fixture input {spec!r}: use a .npy file or random:SEED")
    x = np.load(spec, allow_pickle=False)
    if x.dtype != np.int8 or x.size != model.input_len:
        raise SimrunError(f"fixture input {spec}: need {model.input_len} int8 values, got {x.dtype}{list(x.shape)}")
    return x.reshape(1, model.input_len)
