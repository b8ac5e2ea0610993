"""Every bad input answered: one clear message naming the thing and what to do, the
documented exit code (simrun.errors.EXIT_CODES), no traceback, no emulator left
running (conftest checks), no report that looks complete.

The table covers the CLI (run in this process: a traceback would fail the test),
the Python API and the Robot library (their errors carry the same exit_code).
Rows that need TFLM sources skip with the reason; SIMRUN_SOURCES_DIR runs them.
"""
from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from simrun.errors import SimrunError


@dataclass
class Env:
    tmp: Path
    model: Path             # int8 conv model, input (1, 24, 24, 3)
    dense: Path             # int8 Dense model, input (1, 16): not an image
    fixture_elf: Path | None

    def file(self, name: str, data: bytes | str) -> Path:
        p = self.tmp / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p


def cli(*argv) -> tuple[int, str]:
    from simrun.cli import main
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:        # argparse's own usage errors
            code = exit_.code
    return code, err.getvalue()


def api(fn: Callable, *args, **kwargs) -> tuple[int, str]:
    try:
        fn(*args, **kwargs)
    except SimrunError as err:
        return err.exit_code, str(err)
    return 0, ""


def patched_model(src: Path, dst: Path, change: Callable) -> Path:
    """Rewrite a .tflite with the schema's object API (the flatbuffer stays valid)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    buf = src.read_bytes()
    m = schema.ModelT.InitFromPackedBuf(bytearray(buf), 0)
    change(schema, m)
    builder = flatbuffers.Builder(len(buf) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def _version_99(schema, m):
    m.version = 99


def _op_tflm_lacks(schema, m):
    # SKIP_GRAM: a builtin neither TFLM nor simrun's firmware registers.
    code = m.operatorCodes[-1]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SKIP_GRAM


def _huge_buffer(schema, m):
    b = schema.BufferT()
    b.data = np.zeros(17 * 1024 * 1024, dtype=np.uint8)   # more than the 16 MiB bulk RAM of the MPS2 boards
    m.buffers.append(b)


def fake_sources(root: Path, wrong: str | None = None, drop: str | None = None) -> Path:
    """Trees holding only their probe and witness files: enough for the checks simrun makes
    before CMake; the witness contents are wrong for `wrong` (another version)."""
    from simrun.device.sources import TREES, witness_digest
    for t in TREES:
        if t.dirname == drop:
            continue
        for rel in {t.probe, *t.witness_files}:
            p = root / t.dirname / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")
    return root


def policy(env: Env, text: str) -> Path:
    return env.file("policy.toml", text)


def npz(env: Env, name: str, **arrays) -> Path:
    p = env.tmp / name
    np.savez(p, **arrays)
    return p


def npy(env: Env, name: str, array) -> Path:
    p = env.tmp / name
    np.save(p, array)
    return p


def diff(env: Env, model, *extra):
    return cli("diff", model, "--backends", "tflite-reference,tflm-host", "--no-diagnose",
               "--report", env.tmp / "report", *extra)


def fixture_run(env: Env, model_bytes: bytes, *extra):
    if env.fixture_elf is None:
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (the fixture firmware)")
    model = env.file("fixture.bin", model_bytes)
    return cli("run", model, "--raw", "--elf", env.fixture_elf, "--cpu", "cortex-m4", *extra)


def _fixture_model() -> bytes:
    from simrun.device import fixture
    return fixture.demo_model().to_bytes()


def _robot():
    from simrun.robot.SimrunLibrary import SimrunLibrary
    return SimrunLibrary()


# (id, call(env) -> (exit code, message), expected code, words the message must hold)
ROWS = [
    ("empty model", lambda e: diff(e, e.file("empty.tflite", b"")), 2, ["empty.tflite", "empty file", ".tflite"]),
    ("truncated model", lambda e: diff(e, e.file("half.tflite", e.model.read_bytes()[:3000])), 2,
     ["half.tflite", "truncated or corrupt"]),
    ("not a TFLite file", lambda e: diff(e, e.file("notes.tflite", "hello, I am text\n" * 10)), 2,
     ["notes.tflite", "not a TFLite flatbuffer"]),
    ("unknown schema version", lambda e: diff(e, patched_model(e.model, e.tmp / "v99.tflite", _version_99)), 2,
     ["v99.tflite", "schema version 99", "convert the model again"]),
    ("missing model file", lambda e: diff(e, e.tmp / "nothere.tflite"), 2, ["nothere.tflite", "No such file"]),
    ("operator TFLM lacks (host TFLM)", lambda e: cli(
        "diff", patched_model(e.dense, e.tmp / "skipgram.tflite", _op_tflm_lacks), "--backends",
        "tflm-host,tflite-reference", "--no-diagnose", "--report", e.tmp / "report"), 3, ["tflm-host", "SKIP_GRAM"]),
    ("npy of the wrong shape", lambda e: diff(e, e.model, "--input", npy(e, "x.npy", np.zeros((5, 5), np.int8))), 2,
     ["x.npy", "shape (5, 5)", "(1, 24, 24, 3)"]),
    ("npy of the wrong dtype", lambda e: diff(e, e.model, "--input",
                                              npy(e, "c.npy", np.zeros((1, 24, 24, 3), np.complex64))), 2,
     ["c.npy", "dtype complex64"]),
    ("npz missing the tensor name", lambda e: diff(e, e.model, "--input", npz(e, "m.npz", other=np.zeros(3))), 2,
     ["m.npz", "no array for model input", "arrays present: other"]),
    ("npz with one array too many", lambda e: diff(e, e.model, "--input", npz(
        e, "two.npz", arr_0=np.zeros((1, 24, 24, 3), np.int8), arr_1=np.zeros(3))), 2,
     ["two.npz", "arr_1 match no model input"]),
    ("input of an unknown file type", lambda e: diff(e, e.model, "--input", e.file("x.txt", "1 2 3")), 2,
     ["x.txt", "unknown kind", ".npy"]),
    ("input file that does not exist", lambda e: diff(e, e.model, "--input", e.tmp / "none.npy"), 2,
     ["none.npy", "no such file"]),
    ("image for a model without an image input", lambda e: diff(e, e.dense, "--input", _png(e)), 2,
     ["img.png", "an image needs a 1 x H x W x C input"]),
    ("policy with an unknown table", lambda e: diff(e, e.model, "--policy", policy(e, "[tolerance]\nx = 1\n")), 2,
     ["policy", "tolerance"]),
    ("policy with an unknown key", lambda e: diff(e, e.model, "--policy",
                                                  policy(e, "[defaults]\nmax_abs_delt = 1\n")), 2,
     ["policy", "unknown key 'max_abs_delt'"]),
    ("policy with a bad value", lambda e: diff(e, e.model, "--policy",
                                               policy(e, "[defaults]\nmax_abs_delta = \"one\"\n")), 2,
     ["policy", "max_abs_delta"]),
    ("policy that is not TOML", lambda e: diff(e, e.model, "--policy", policy(e, "[defaults\n")), 2,
     ["policy", "TOML"]),
    ("policy extending something unknown", lambda e: diff(e, e.model, "--policy",
                                                          policy(e, 'extends = "strict"\n')), 2,
     ["policy", "extends must be \"default\"", "'strict'"]),
    ("baseline that does not exist", lambda e: diff(e, e.model, "--baseline", e.tmp / "old" / "summary.json"), 2,
     ["--baseline", "old/summary.json", "cannot read it"]),
    ("baseline that is an A/B summary", lambda e: diff(e, e.model, "--baseline",
                                                       e.file("ab.json", '{"schema": "simrun-ab/1"}')), 2,
     ["--baseline", "ab.json", "not the summary.json of `simrun diff`"]),
    ("unknown CPU (diff)", lambda e: diff(e, e.model, "--cpu", "cortex-m99"), 2, ["cortex-m99", "cortex-m55"]),
    ("unknown CPU (build)", lambda e: cli("build", "--cpu", "cortex-m99"), 2, ["cortex-m99", "unknown", "cortex-m55"]),
    ("unknown kernels", lambda e: diff(e, e.model, "--cpu", "cortex-m4", "--kernels", "fast"), 2,
     ["fast", "cmsis-nn"]),
    ("unknown rounding", lambda e: diff(e, e.model, "--cpu", "cortex-m4", "--rounding", "half"), 2,
     ["half", "single"]),
    ("unknown backend label", lambda e: cli("diff", e.model, "--backends", "tflite-fast", "--report",
                                            e.tmp / "report"), 2, ["tflite-fast", "tflm-host"]),
    ("target label with an unknown suffix", lambda e: cli("diff", e.model, "--backends", "target:cortex-m4:reference:x",
                                                          "--report", e.tmp / "report"), 2,
     ["target:cortex-m4:reference:x", "single-rounding"]),
    ("negative timeout", lambda e: diff(e, e.model, "--timeout", "-1"), 2, ["--timeout"]),
    ("count of zero", lambda e: diff(e, e.model, "--count", "0"), 2, ["--count"]),
    ("sources dir missing a tree", lambda e: cli(
        "build", "--cpu", "cortex-m4", "--sources", fake_sources(e.tmp / "src", drop="gemmlowp"),
        "--cache-dir", e.tmp / "cache"), 4, ["lacks gemmlowp", "--sources"]),
    ("sources tree at the wrong commit", lambda e: cli(
        "build", "--cpu", "cortex-m4", "--sources", fake_sources(e.tmp / "src"),
        "--cache-dir", e.tmp / "cache"), 4, ["tflite-micro/ is not at the pin 90b983c2b3f1", "--sources"]),
    ("unwritable firmware cache", lambda e: cli("build", "--cpu", "cortex-m4", "--cache-dir", "/proc/simrun-cache"),
     4, ["/proc/simrun-cache", "not writable", "SIMRUN_CACHE_DIR"]),
    ("unwritable report directory", lambda e: cli("diff", e.model, "--backends", "tflite-reference,tflm-host",
                                                  "--report", "/proc/x"), 2, ["/proc/x", "not writable", "--report"]),
    ("--elf that is not an ELF", lambda e: cli("run", e.model, "--cpu", "cortex-m4", "--elf", e.file("fw.elf", "no")),
     2, ["fw.elf"]),
    ("--elf that is truncated", lambda e: cli("run", e.model, "--cpu", "cortex-m4", "--elf", e.file(
        "cut.elf", e.fixture_elf.read_bytes()[:2000] if e.fixture_elf else b"\x7fELF")), 2, ["cut.elf"]),
    ("unwritable --out", lambda e: fixture_run(e, _fixture_model(), "--out", "/proc/x/cap.npz"), 2,
     ["/proc/x", "not writable"]),
    ("fixture model larger than the firmware's buffer", lambda e: fixture_run(e, b"SFX1" + bytes(200_000)), 2,
     ["200004", "bulk region"]),
    ("arena too small", lambda e: fixture_run(e, _fixture_model(), "--arena-limit", "16"), 3,
     ["arena too small"]),
    # The Python API and the Robot library: the same errors, the same codes.
    ("API: Model of a non-TFLite file", lambda e: api(_model_from, e.file("a.bin", b"\0" * 64)), 2,
     ["a.bin", "not a TFLite flatbuffer"]),
    ("API: unknown backend", lambda e: api(_parse_backend, "tflm-target"), 2, ["tflm-target"]),
    ("API: fixture cache unwritable", lambda e: api(_fixture_build, "/proc/simrun-cache"), 4,
     ["/proc/simrun-cache", "not writable"]),
    ("Robot: Load Model of an empty file", lambda e: api(_robot().load_model, str(e.file("e.tflite", b""))), 2,
     ["e.tflite", "empty file"]),
    ("Robot: Set Input From File of the wrong shape", lambda e: api(_robot_input, e.model,
                                                                    npy(e, "r.npy", np.zeros(7, np.int8))), 2,
     ["r.npy", "shape (7,)"]),
    ("Robot: Build Firmware for an unknown CPU", lambda e: api(_robot().build_firmware, "cortex-m99"), 2,
     ["cortex-m99"]),
]


def _png(env: Env) -> Path:
    import matplotlib.image as mpimg
    p = env.tmp / "img.png"
    mpimg.imsave(p, np.zeros((8, 8, 3), np.uint8))
    return p


def _model_from(path):
    from simrun.model import Model
    return Model.from_file(path)


def _parse_backend(label):
    from simrun.backends import parse_backend
    return parse_backend(label)


def _fixture_build(cache):
    import shutil as _sh
    if not _sh.which("arm-none-eabi-gcc"):
        pytest.skip("arm-none-eabi-gcc not on PATH")
    from simrun.device import fixture
    return fixture.build_fixture("cortex-m4", cache_dir=cache)


def _robot_input(model, path):
    lib = _robot()
    lib.load_model(str(model))
    lib.set_input_from_file(str(path))


@pytest.fixture(scope="module")
def models(tf_model):
    from testmodels import conv_logistic_int8, logistic_only_int8
    return tf_model(conv_logistic_int8), tf_model(logistic_only_int8, width=16)


@pytest.fixture(scope="module")
def fixture_elf():
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")):
        return None
    from simrun.device import fixture
    return fixture.build_fixture("cortex-m4")


def test_the_table_is_big_enough():
    assert len(ROWS) >= 25 and len({r[0] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("name,call,code,words", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(name, call, code, words, models, fixture_elf, tmp_path):
    env = Env(tmp_path, *models, fixture_elf)
    got, message = call(env)
    assert got == code, f"{name}: exit {got}, expected {code}: {message}"
    assert "Traceback" not in message
    for word in words:
        assert word.lower() in message.lower(), f"{name}: {word!r} not in {message!r}"
    if message.startswith("simrun "):
        assert message.count("error:") == 1, message      # one message, not a cascade
    report = tmp_path / "report"
    if code != 3:
        # Refused before anything ran: a report folder (if the command has one) says so, and
        # nothing in it can look complete.
        if (report / "summary.json").exists():
            stopped = json.loads((report / "summary.json").read_text())
            assert stopped["complete"] is False and stopped["exit_code"] == code
            assert not (report / "report.html").exists()
    elif report.exists():
        summary = json.loads((report / "summary.json").read_text())
        assert summary["backend_errors"] and not summary["verdict"]["passed"]


if __name__ == "__main__":      # prints every row's message (for reading them)
    import sys
    import tempfile
    sys.path.insert(0, str(Path(__file__).parent))
    from testmodels import conv_logistic_int8, logistic_only_int8
    from simrun.device import fixture as _fx
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        mods = conv_logistic_int8(base), logistic_only_int8(base, width=16)
        elf = _fx.build_fixture("cortex-m4")
        for i, (name, call, code, _) in enumerate(ROWS):
            row_dir = base / f"row{i}"
            row_dir.mkdir()
            got, message = call(Env(row_dir, *mods, elf))
            shown = [ln for ln in message.splitlines() if not ln.startswith("[diff]")]
            print(f"{got} {name}: {' | '.join(shown)[:400]}")
