"""Robot Framework keywords over simrun's Python API.

Import in a suite as ``Library    simrun.robot.SimrunLibrary``. The keywords live
in components, one module per concern, combined here with
robotframework-pythonlibcore (as SeleniumLibrary and Browser do):

- firmware.py      firmware and emulator session
- fixture.py       simrun's fixture firmware and its numpy reference
- model_inputs.py  model and inputs
- captures.py      running backends, reading captures
- comparison.py    comparison, tolerance policy, reports
- diagnosis.py     own vs inherited error per layer and its cause
- quant.py         the quantization A/B: error vs float and between backends per scheme
- cost.py          instructions executed per operator on the target
- task.py          task decoders: decisions (classes, boxes, triggers) instead of tensors

Every keyword is a thin call into simrun; the components only convert
arguments, keep the state of context.SuiteContext between keywords and turn
results into assertions. A new concern gets its own component module, listed
in COMPONENTS below.
"""
from __future__ import annotations

from robotlibcore import DynamicCore

from .captures import CaptureKeywords
from .comparison import ComparisonKeywords
from .context import SuiteContext
from .cost import CostKeywords
from .diagnosis import DiagnosisKeywords
from .firmware import FirmwareKeywords
from .fixture import FixtureKeywords
from .model_inputs import ModelKeywords
from .quant import QuantKeywords
from .task import TaskKeywords

COMPONENTS = (FirmwareKeywords, FixtureKeywords, ModelKeywords, CaptureKeywords, ComparisonKeywords,
              DiagnosisKeywords, QuantKeywords, CostKeywords, TaskKeywords)


class SimrunLibrary(DynamicCore):
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
    ROBOT_LISTENER_API_VERSION = 3     # the library listens to itself (pythonlibcore registers it)

    def __init__(self):
        self.context = SuiteContext()       # the state every component shares, as its `ctx`
        DynamicCore.__init__(self, [component(self.context) for component in COMPONENTS])

    # --- listener: the library itself stops what it started -----------------
    def _end_suite(self, data, result):
        self.context.stop_session()

    def _close(self):
        self.context.stop_session()
