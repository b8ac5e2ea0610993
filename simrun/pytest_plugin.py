"""simrun's pytest plugin: fixtures that diff a model and drive the emulated device.

Registered through the `pytest11` entry point (loaded by every pytest once simrun is
installed; `-p no:simrun.pytest_plugin` turns it off, `-p simrun.pytest_plugin` loads it
from a checkout). Fixtures:

- `simrun_diff(model, **options) -> DiffResult`: `simrun.diff` with its report folder in the
  test's tmp_path (``report=None`` writes none); a failing test shows the diagnosis and the
  report folder of every diff it ran in a "simrun" section.
- `simrun_firmware(cpu, kernels="reference", rounding="double", fp_contract="on") -> Firmware`:
  the TFLM firmware from the build cache, built once when missing (session-scoped; under
  pytest-xdist the cache's lock makes one worker build and the others wait for it).
- `simrun_session(firmware_or_elf, cpu=None, **session_options) -> Session`: an emulator
  session with that firmware, stopped when the test ends whatever happens.

Assertion helpers (`from simrun.testing import ...`): `assert_passed`, `assert_bit_exact`,
`assert_max_abs_delta`, `assert_no_own_error`; their messages read like the terminal diagnosis.

Nothing heavy is imported until a fixture is used, so the plugin costs nothing in test
runs that do not use it. Every test's files live in its own tmp_path, so tests run in
parallel under pytest-xdist (`-n auto`).
"""
from __future__ import annotations

from pathlib import Path

import pytest

_RESULTS = pytest.StashKey[list]()


@pytest.fixture
def simrun_diff(request, tmp_path):
    """Call as `simrun_diff(model, inputs=..., backends=..., cpu=..., policy=...)`: see simrun.diff."""
    from .api import diff

    runs = request.node.stash.setdefault(_RESULTS, [])
    default_report = object()

    def run(model, inputs=None, *, report=default_report, **options):
        if report is default_report:
            report = tmp_path / f"simrun-report{len(runs) or ''}"
        result = diff(model, inputs, report=report, **options)
        runs.append((Path(str(model)).name, result, report))
        return result

    return run


@pytest.fixture(scope="session")
def simrun_firmware():
    """Call as `simrun_firmware(cpu, kernels="reference", rounding=..., fp_contract=...)`."""
    from .device.build import ensure_firmware
    from .device.targets import DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING
    built = {}

    def get(cpu: str, kernels: str = "reference", rounding: str = DEFAULT_ROUNDING,
            fp_contract: str = DEFAULT_FP_CONTRACT):
        key = (cpu, kernels, rounding, fp_contract)
        if key not in built:
            built[key] = ensure_firmware(cpu, kernels, rounding=rounding, fp_contract=fp_contract)
        return built[key]

    return get


@pytest.fixture
def simrun_session():
    """Call as `simrun_session(firmware_or_elf, cpu=None, emulator="qemu", timeout=..., ...)`:
    a started simrun.device.session.Session (cpu defaults to the firmware's own)."""
    from .device.session import Session
    from .errors import BadInput
    started = []

    def start(firmware, cpu: str | None = None, **options):
        elf = getattr(firmware, "elf", firmware)
        cpu = cpu or getattr(firmware, "metadata", {}).get("cpu")
        if cpu is None:
            raise BadInput(f"simrun_session({elf}): give cpu= for a firmware ELF without simrun's metadata")
        session = Session(elf, cpu=cpu, **options)
        started.append(session)
        return session.__enter__()

    yield start
    for session in reversed(started):
        session.__exit__(None, None, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    runs = item.stash.get(_RESULTS, None)
    if runs and report.failed and call.when == "call":
        from .testing import diagnosis_text
        parts = []
        for name, result, folder in runs:
            where = f" (report: {folder})" if folder is not None else ""
            parts.append(f"simrun diff {name}{where}\n{diagnosis_text(result)}")
        report.sections.append(("simrun", "\n\n".join(parts)))
