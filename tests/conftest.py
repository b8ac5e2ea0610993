"""Shared test fixtures, and the split between unit tests and the rest.

Every test ends with no qemu-system-arm (or renode) process that it started
still alive: the autouse fixture below fails the test that leaked one.
Emulators started by other pytest runs on the same machine are told apart by
a token every process started from this run inherits in its environment.

Unit tests (`python -m pytest -m unit`, under a minute): every test that has
none of the markers in NOT_UNIT gets the `unit` marker at collection. Tests get
those markers two ways:
- from the fixtures they use (IMPLIED_MARKS): `qemu`, `arm_gcc`, `emulator`,
  `renode_replica`, `tflm_firmware`, `tf_model` mark their users, so a new
  test on the emulator or on a TensorFlow model needs no marker of its own;
- by hand, for what no fixture shows: `@pytest.mark.backends` (runs models
  through the host interpreters in worker processes), `@pytest.mark.integration`
  (simrun, pytest, bench scripts, wheel installs, Robot or a browser in child processes),
  `@pytest.mark.tensorflow` (converts with TensorFlow itself), or
  `pytestmark = pytest.mark.<name>` for a whole module.
A plain `python -m pytest` (and scripts/test.sh) still runs everything. A unit
test that took longer than SLOW_UNIT_SECONDS is named at the end of the run,
so one that should carry a marker is seen (a note, not a failure).

TensorFlow models: `tf_model(builder, **kwargs) -> Path` converts each model
once per session. `builder(out_dir: Path, **kwargs) -> Path` is any function that
writes a .tflite into out_dir and returns it (tests/testmodels.py holds the
shared ones), deterministic in its arguments: the cache is keyed by the
builder's name and the arguments, one directory per key. For example:

    def test_something(tf_model):
        path = tf_model(conv_logistic_int8)                  # built once, reused by every test
        wide = tf_model(logistic_only_int8, width=16384)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO.parent / "shared" / "models"
REPLICA_DIR = Path(__file__).resolve().parent / "renode_replica"

# A shell that starts pytest in the background (`cmd &` without job control) leaves SIGINT
# ignored, and an ignored signal stays ignored across exec: every simrun a test starts
# would then shrug off the Ctrl-C the interrupt tests send it. Give SIGINT back its handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

_TOKEN = f"SIMRUN_TEST_RUN={uuid.uuid4().hex}"
os.environ["SIMRUN_TEST_RUN"] = _TOKEN.split("=", 1)[1]


def _emulator_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            names = {os.path.basename(arg) for arg in argv[:3]}
            # QEMU; Renode's launcher script, Renode itself (`dotnet .../Renode.dll`, `mono .../Renode.exe`;
            # the replica calls itself Renode) and the network-namespace relay in front of it.
            if not names & {b"qemu-system-arm", b"renode", b"Renode", b"Renode.dll", b"Renode.exe",
                             b"netns_relay.py"}:
                continue
            if _TOKEN.encode() in (entry / "environ").read_bytes().split(b"\0"):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


# Markers that take a test out of the unit selection; the fixtures that imply them.
NOT_UNIT = ("qemu", "renode", "tflm", "tensorflow", "backends", "integration", "slow")
IMPLIED_MARKS = {"qemu": "qemu", "arm_gcc": "qemu", "emulator": "qemu", "renode_replica": "renode",
                 "tflm_firmware": "tflm", "tf_model": "tensorflow"}
SLOW_UNIT_SECONDS = 3.0
_slow_unit: list[tuple[str, float]] = []


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))     # with the fixtures' own fixtures
        for fixture in used & IMPLIED_MARKS.keys():
            item.add_marker(IMPLIED_MARKS[fixture])
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker("unit")


def pytest_runtest_logreport(report):
    if report.when in ("setup", "call") and report.duration > SLOW_UNIT_SECONDS and "unit" in report.keywords:
        _slow_unit.append((f"{report.nodeid} ({report.when})", report.duration))


def pytest_terminal_summary(terminalreporter):
    if _slow_unit:
        terminalreporter.write_sep("-", f"unit tests slower than {SLOW_UNIT_SECONDS:g} s on this run")
        for name, seconds in _slow_unit:
            terminalreporter.write_line(f"{seconds:6.1f} s  {name}")
        terminalreporter.write_line("A test that runs backends, TensorFlow, pytest or other programs belongs "
                                    "outside the unit selection: give it a marker (tests/conftest.py).")


@pytest.fixture(autouse=True)
def no_leaked_emulators():
    before = _emulator_pids()
    yield
    leaked = _emulator_pids() - before
    assert not leaked, f"test left emulator processes running: {sorted(leaked)}"


@pytest.fixture(autouse=True)
def not_in_github_actions(monkeypatch):
    """Tests run inside a GitHub job must not post to its step summary or annotate it:
    the tests that check those outputs set the variables themselves."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not MODELS.is_dir():
        pytest.skip(f"real models not found at {MODELS} (expected ../shared/models beside the repo)")
    return MODELS


@pytest.fixture(scope="session")
def tf_model(tmp_path_factory):
    """`tf_model(builder, **kwargs) -> Path`: builder's model, converted once per session.

    TensorFlow is imported at the first call, not at setup: a test that skips
    first (no TFLM sources) does not pay for it."""
    root = tmp_path_factory.mktemp("tf-models")
    built: dict[str, Path] = {}

    def get(builder, **kwargs) -> Path:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
        key = f"{builder.__module__}.{builder.__qualname__}({args})"
        if key not in built:
            pytest.importorskip("tensorflow", reason="the test models are built with TensorFlow")
            out = root / f"{builder.__name__}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
            out.mkdir()
            built[key] = Path(builder(out, **kwargs))
        return built[key]
    return get


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} not on PATH")
    return path


@pytest.fixture(scope="session")
def qemu() -> str:
    return require_tool("qemu-system-arm")


@pytest.fixture(scope="session")
def arm_gcc() -> str:
    return require_tool("arm-none-eabi-gcc")


@pytest.fixture(scope="session")
def tflm_firmware(qemu, arm_gcc):
    """`get(cpu, kernels) -> Firmware`, built (or taken from the cache) once per session."""
    from simrun.device.sources import HOW_TO_PROVIDE, local_sources

    if local_sources() is None:
        pytest.skip(f"TFLM sources not available: {HOW_TO_PROVIDE}")
    from simrun.device.build import ensure_firmware

    built = {}

    def get(cpu: str, kernels: str = "reference"):
        if (cpu, kernels) not in built:
            built[cpu, kernels] = ensure_firmware(cpu, kernels)
        return built[cpu, kernels]
    return get


def random_input(model, seed: int):
    """One seeded sample for every model input, as `simrun diff --input random:SEED` makes it."""
    from simrun.inputs import random_samples
    return random_samples(model.inputs, seed, 1)[0]


# SIMRUN_TEST_RENODE=real: the Renode-path tests run against the real `renode` on PATH instead of
# the replica (where Renode is installed), so both are held to the same tests.
REAL_RENODE = os.environ.get("SIMRUN_TEST_RENODE") == "real"


@pytest.fixture
def renode_replica(qemu, monkeypatch):
    """The Renode replica (tests/renode_replica: Renode's replies over real QEMU) first on PATH,
    or with SIMRUN_TEST_RENODE=real the real `renode` on PATH.

    Skipped, with the reason, where Renode could not be started safely (no
    private network namespace): the launcher refuses there, by design."""
    from simrun.errors import ToolMissing
    from simrun.device.emulators.renode import unshare_prefix

    if REAL_RENODE:
        found = shutil.which("renode")
        if found is None:
            pytest.skip("SIMRUN_TEST_RENODE=real, but no renode on PATH")
        replica = Path(found)
    else:
        monkeypatch.setenv("PATH", f"{REPLICA_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("RENODE_REPLICA_PYTHON", sys.executable)
        replica = REPLICA_DIR / "renode"
    monkeypatch.delenv("SIMRUN_RENODE_NETWORK", raising=False)
    try:
        unshare_prefix()
    except ToolMissing as err:
        pytest.skip(f"no private network namespace here, so simrun will not start Renode: {err}")
    return replica


@pytest.fixture
def replica_only(renode_replica):
    """For tests that turn one of the replica's knobs (RENODE_REPLICA_*): skipped on the real Renode."""
    if REAL_RENODE:
        pytest.skip("uses a knob of the Renode replica (a hung or older Renode) the real one does not have")
    return renode_replica


@pytest.fixture(params=["qemu", "renode"])
def emulator(request) -> str:
    """Run the test on QEMU and on the Renode path (the replica; see renode_replica)."""
    request.getfixturevalue("qemu")
    if request.param == "renode":
        request.getfixturevalue("renode_replica")
    return request.param
