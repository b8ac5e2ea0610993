"""The Robot scenarios under pabot (--processes 2) and the pytest plugin's tests under
pytest-xdist (-n 2) pass without stepping on each other: while they run, a sampler watches
every emulator this test run started and checks that no two alive at once share a GDB
socket or a board-RAM file (and no socket is ever reused); report folders are distinct."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Both run whole test runners (minutes) with emulators and host backends.
pytestmark = [pytest.mark.integration, pytest.mark.backends]


class EmulatorSampler(threading.Thread):
    """Polls /proc for qemu-system-arm processes carrying this test run's token."""

    def __init__(self):
        super().__init__(daemon=True)
        self.token = f"SIMRUN_TEST_RUN={os.environ['SIMRUN_TEST_RUN']}".encode()
        self.snapshots: list[dict[int, tuple[str, str]]] = []
        self.seen: dict[int, tuple[str, str]] = {}
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            now = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    argv = [a.decode() for a in (entry / "cmdline").read_bytes().split(b"\0")]
                    if not argv or os.path.basename(argv[0]) != "qemu-system-arm":
                        continue
                    if self.token not in (entry / "environ").read_bytes().split(b"\0"):
                        continue
                except OSError:
                    continue
                sock = next((p.split("path=", 1)[1].split(",")[0] for p in argv if "socket,id=gdb0" in p), "")
                ram = next((p.split("mem-path=", 1)[1].split(",")[0] for p in argv if "mem-path=" in p), "")
                if sock:                # not a probe (`qemu-system-arm -machine help`): a session
                    now[int(entry.name)] = (sock, ram)
            if now:
                self.snapshots.append(now)
                self.seen.update(now)
            time.sleep(0.05)

    def check(self) -> int:
        """Asserts no collision; returns the most emulators seen alive at once."""
        self.done.set()
        self.join(5)
        for snap in self.snapshots:
            socks = [s for s, _ in snap.values()]
            rams = [r for _, r in snap.values() if r]
            assert len(set(socks)) == len(socks), f"two live emulators share a GDB socket: {snap}"
            assert len(set(rams)) == len(rams), f"two live emulators share a RAM file: {snap}"
        socks = [s for s, _ in self.seen.values()]
        assert len(set(socks)) == len(socks), f"a GDB socket path was reused: {self.seen}"
        return max((len(s) for s in self.snapshots), default=0)


def _env(**extra) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
                **extra)


def test_robot_scenarios_pass_under_pabot(qemu, arm_gcc, models_dir, tmp_path):
    pytest.importorskip("pabot")
    sampler = EmulatorSampler()
    sampler.start()
    # Every scenario but the quantization A/B, which spends minutes in TensorFlow converting
    # and starts no emulator (it passes under pabot too: `pabot --processes 2 robot_tests/`).
    suites = [str(p) for p in sorted((REPO / "robot_tests").glob("*.robot")) if p.name != "quantization_ab.robot"]
    proc = subprocess.run([sys.executable, "-m", "pabot.pabot", "--processes", "2", "--outputdir",
                           str(tmp_path / "out"), "--exclude", "expected-failure", *suites],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1800)
    most = sampler.check()
    print(f"pabot: {len(sampler.seen)} emulators, at most {most} alive at once")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 failed" in proc.stdout, proc.stdout[-2000:]
    assert most >= 1, "no emulator ran: the fixture scenarios did not reach QEMU"
    # pabot gave each process its own output folder, so the scenarios' report folders
    # (Write Reports ${OUTPUT DIR}/...) cannot meet.
    reports = sorted(tmp_path.rglob("report.html"))
    assert len({p.parent for p in reports}) == len(reports)


XDIST = """
import os
from pathlib import Path

MODELS = Path(os.environ["SIMRUN_MODELS"])


def _note(name, pid):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["OUT"], name).write_text(f"{{worker}} {{pid}}")


def _session_and_diff(simrun_session, simrun_diff, name, seed):
    import numpy as np
    from simrun.device import fixture
    s = simrun_session(Path({elf!r}), cpu="cortex-m3", timeout=30)
    model = fixture.demo_model(seed=seed)
    s.load_model(model.to_bytes(), raw=True)
    x = np.full((1, 64), seed, dtype=np.int8)
    for _ in range(20):                     # keep the emulator up while the other worker runs
        cap = s.invoke([x])
    np.testing.assert_array_equal(cap.outputs[0].values.ravel(), fixture.reference(model, x)[-1].ravel())
    result = simrun_diff(MODELS / "hello_world_int8.tflite", backends="tflite-reference,tflm-host",
                         diagnose=False)
    assert result.passed
    _note(name, s.emulator_pid)


def test_a(simrun_session, simrun_diff, tmp_path):
    _session_and_diff(simrun_session, simrun_diff, "a", 1)
    Path(os.environ["OUT"], "a.dir").write_text(str(tmp_path / "simrun-report"))


def test_b(simrun_session, simrun_diff, tmp_path):
    _session_and_diff(simrun_session, simrun_diff, "b", 2)
    Path(os.environ["OUT"], "b.dir").write_text(str(tmp_path / "simrun-report"))


def test_c(simrun_session, simrun_diff, tmp_path):
    _session_and_diff(simrun_session, simrun_diff, "c", 3)
    Path(os.environ["OUT"], "c.dir").write_text(str(tmp_path / "simrun-report"))


def test_d(simrun_session, simrun_diff, tmp_path):
    _session_and_diff(simrun_session, simrun_diff, "d", 4)
    Path(os.environ["OUT"], "d.dir").write_text(str(tmp_path / "simrun-report"))
"""


def test_plugin_example_and_sessions_pass_under_xdist(qemu, arm_gcc, models_dir, tmp_path):
    pytest.importorskip("xdist")
    from simrun.device import fixture
    elf = fixture.build_fixture("cortex-m3")
    work = tmp_path / "work"
    work.mkdir()
    (work / "test_sessions.py").write_text(XDIST.format(elf=str(elf)))
    (work / "test_model_numerics.py").write_text((REPO / "examples" / "test_model_numerics.py").read_text())
    out = tmp_path / "notes"
    out.mkdir()
    sampler = EmulatorSampler()
    sampler.start()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "simrun.pytest_plugin", "-p", "no:cacheprovider",
                           "-q", "-n", "2", "--basetemp", str(tmp_path / "base")], cwd=work,
                          env=_env(SIMRUN_MODELS=str(models_dir), OUT=str(out)),
                          capture_output=True, text=True, timeout=900)
    most = sampler.check()
    print(f"xdist: {len(sampler.seen)} emulators, at most {most} alive at once")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "5 passed" in proc.stdout
    notes = {n: (out / n).read_text().split() for n in "abcd"}
    assert {w for w, *_ in notes.values()} <= {"gw0", "gw1"}, notes       # ran in xdist workers
    assert len({pid for *_, pid in notes.values()}) == 4                  # four emulators, one each
    folders = [(out / f"{n}.dir").read_text() for n in "abcd"]
    assert len(set(folders)) == 4 and all((Path(f) / "summary.json").is_file() for f in folders)
    assert most >= 1
