"""`simrun suite` and `simrun merge`: suite files, shards, the index, and two shards merged
equal to one unsharded run (over the shared models, on host backends)."""
from __future__ import annotations

import json
import signal
import time
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simrun.cli import main
from simrun.errors import BadInput
from simrun.suite import Shard, load_suite, select_shard
from simrun.suite.index import suite_exit_code
from simrun.suite.shard import assign
from test_baseline import models  # noqa: F401  (the fixture: a model and its perturbed twin)

REPO = Path(__file__).resolve().parents[1]
BACKENDS = "tflm-host,tflite-reference"
# hello_world and micro_speech agree bit for bit on both; desktop LiteRT refuses person_detect
# (quantized_dimension 3), so its tflite-reference is a backend error and only one backend
# produced results: exit 1 for that model (README, Exit codes), the worst of the suite.
SHARED = ("hello_world_int8.tflite", "micro_speech_quantized.tflite", "person_detect.tflite",
          "kws_ref_model.tflite", "hello_world_float.tflite")


def _suite(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
    return subprocess.run([sys.executable, "-m", "simrun", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _comparable(summary: dict) -> dict:
    """What must agree between a sharded+merged and an unsharded run: all but timings and
    where the output came from."""
    models = [{k: v for k, v in m.items() if k not in ("seconds", "peak_rss_mib")} for m in summary["models"]]
    return {"exit_code": summary["exit_code"], "counts": summary["counts"],
            "backends": summary["backends"], "models": models}


@pytest.mark.integration
@pytest.mark.backends
def test_two_shards_merged_equal_one_unsharded_run(models_dir, tmp_path):
    models = [str(models_dir / name) for name in SHARED]
    common = ["--backends", BACKENDS, "--no-diagnose", "--jobs", "2"]
    # The two shards run at the same time, as two CI machines would, each with --jobs 2.
    shards = [subprocess.Popen([sys.executable, "-m", "simrun", "suite", *models, *common, "--shard", f"{i}/2",
                                "--out", str(tmp_path / f"shard{i}")], cwd=tmp_path,
                               env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    whole = _suite("suite", *models, *common, "--out", str(tmp_path / "whole"), cwd=tmp_path)
    outs = [p.communicate(timeout=900) for p in shards]
    assert whole.returncode == 1, whole.stdout + whole.stderr        # person_detect's backend error
    assert sorted(p.returncode for p in shards) == [0, 1], outs
    # Plain lines without a terminal: no cursor control in a CI log.
    assert "\x1b" not in whole.stderr and "[suite] person_detect: FAIL (exit 1)" in whole.stderr

    merged = _suite("merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out",
                    str(tmp_path / "merged"), cwd=tmp_path)
    assert merged.returncode == 1, merged.stdout + merged.stderr
    one = json.loads((tmp_path / "whole" / "summary.json").read_text())
    two = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert _comparable(two) == _comparable(one)
    assert [m["id"] for m in one["models"]] == [Path(n).stem for n in SHARED]
    assert one["counts"] == {"models": 5, "passed": 4, "failed": 1, "by_exit_code": {"0": 4, "1": 1}}
    person = next(m for m in one["models"] if m["id"] == "person_detect")
    # The default policy warns on a desktop interpreter's refusal (the run still fails: one backend left).
    assert person["cells"]["tflite-reference"]["status"] == "error (warn)"
    assert "quantized_dimension" in person["cells"]["tflite-reference"]["message"]
    hello = next(m for m in one["models"] if m["id"] == "hello_world_int8")
    assert hello["cells"] == {"tflm-host": {"status": "bit-exact", "first_divergent": None,
                                            "max_abs_delta": 0.0, "message": None},
                              "tflite-reference": {"status": "reference", "first_divergent": None,
                                                   "max_abs_delta": None, "message": None}}
    assert all(m["peak_rss_mib"] > 10 for m in one["models"])

    # The merged junit.xml is the unsharded one: same suites, cases and counts.
    def cases(root: Path):
        tree = ET.parse(root / "junit.xml").getroot()
        return (tree.get("tests"), tree.get("errors"),
                sorted((s.get("name"), c.get("name"), tuple(sorted(x.tag for x in c)))
                       for s in tree.iter("testsuite") for c in s.iter("testcase")))
    assert cases(tmp_path / "merged") == cases(tmp_path / "whole")
    refused = [c for c in cases(tmp_path / "whole")[2] if c[0] == "person_detect: backends" and c[1] == "backend tflite-reference"]
    assert len(refused) == 1 and "skipped" in refused[0][2]
    for out in ("whole", "merged"):
        index = (tmp_path / out / "index.html").read_text()
        assert "models/hello_world_int8/report.html" in index and "quantized_dimension" in index
        for name in SHARED:
            assert (tmp_path / out / "models" / Path(name).stem / "summary.json").is_file()
        md = (tmp_path / out / "summary.md").read_text()
        assert "| [person_detect](models/person_detect/) | FAIL (exit 1) | reference | error (warn) |" in md

    # A merge with a shard missing names it, as a usage error.
    lone = _suite("merge", str(tmp_path / "shard1"), "--out", str(tmp_path / "lone"), cwd=tmp_path)
    assert lone.returncode == 2 and "shard(s) 2/2 missing" in lone.stderr


def _entries(tmp_path: Path, n: int):
    for k in range(n):
        (tmp_path / f"m{k}.tflite").write_bytes(b"")
    return load_suite([tmp_path / f"m{k}.tflite" for k in range(n)], {"backends": BACKENDS})


def test_shards_are_disjoint_complete_and_balanced(tmp_path):
    entries = _entries(tmp_path, 7)
    parts = [select_shard(entries, Shard(i, 3)) for i in (1, 2, 3)]
    ids = [e.id for part in parts for e in part]
    assert sorted(ids) == sorted(e.id for e in entries) and len(ids) == 7
    assert [len(p) for p in parts] == [3, 2, 2]
    assert parts == [select_shard(entries, Shard(i, 3)) for i in (1, 2, 3)]      # stable
    # By durations: the long model alone on one shard, the short ones together.
    durations = {"m0": 100.0, "m1": 10, "m2": 10, "m3": 10, "m4": 10, "m5": 10, "m6": 10}
    owners = assign(entries, 2, durations)
    assert owners[0] == 1 and owners[1:] == [2] * 6
    loads = [sum(durations[e.id] for e, s in zip(entries, owners) if s == k) for k in (1, 2)]
    assert loads == [100.0, 60.0]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "", "a/b"])
def test_a_bad_shard_is_a_usage_error(text):
    with pytest.raises(BadInput, match="--shard"):
        Shard.parse(text)


def test_suite_file_defaults_and_overrides(tmp_path):
    (tmp_path / "models").mkdir()
    for name in ("a", "b"):
        (tmp_path / "models" / f"{name}.tflite").write_bytes(b"")
    (tmp_path / "p.toml").write_text("")
    (tmp_path / "zoo.toml").write_text(
        '[defaults]\nbackends = "tflite-reference,tflm-host"\ncount = 2\n'
        '[[models]]\npath = "models/a.tflite"\nname = "alpha"\ninputs = ["x.npy", "random:3"]\npolicy = "p.toml"\n'
        '[[models]]\npath = "models/b.tflite"\nbackends = ["tflm-host", "tflite-optimized"]\ndiagnose = false\n')
    a, b = load_suite([tmp_path / "zoo.toml"], {"timeout": 30.0, "backends": "tflm-host"})
    assert (a.id, a.backends, a.count, a.timeout) == ("alpha", ("tflite-reference", "tflm-host"), 2, 30.0)
    assert a.inputs == (str(tmp_path / "x.npy"), "random:3") and a.policy == tmp_path / "p.toml"
    assert (b.id, b.backends, b.diagnose) == ("b", ("tflm-host", "tflite-optimized"), False)


@pytest.mark.parametrize("toml, message", [
    ('[[models]]\npath = "m.tflite"\ntask = "detect"\n', "unknown key(s) task"),
    ('[[models]]\npath = "missing.tflite"\n', "no such model file or folder"),
    ('[[models]]\npath = "m.tflite"\nbackends = "tflm-hots"\n', "unknown backend 'tflm-hots'"),
    ('[[models]]\npath = "m.tflite"\ncount = "2"\n', "count = '2' has the wrong type"),
    ('[defaults]\nbackends = "tflm-host"\n', "no [[models]] entries"),
    ('[[models]]\npath = "m.tflite"\nreference = "tflite-optimized"\nbackends = "tflm-host,tflite-reference"\n',
     "reference tflite-optimized: not among its backends"),
    ("[[models]\n", "suite file"),
])
def test_suite_file_errors_name_the_entry(tmp_path, toml, message, capsys):
    (tmp_path / "m.tflite").write_bytes(b"")
    (tmp_path / "zoo.toml").write_text(toml)
    assert main(["suite", str(tmp_path / "zoo.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simrun suite: error: ") and message in err, err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_same_stems_get_distinct_ids(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.tflite").write_bytes(b"")
    ids = [e.id for e in load_suite([tmp_path], {"backends": BACKENDS})]
    assert ids == ["x_model", "y_model"]


@pytest.mark.integration
@pytest.mark.backends
def test_a_model_that_does_not_load_fails_its_row_only(models_dir, tmp_path):
    (tmp_path / "broken.tflite").write_bytes(b"not a flatbuffer")
    proc = _suite("suite", str(tmp_path / "broken.tflite"), str(models_dir / "hello_world_int8.tflite"),
                  "--backends", BACKENDS, "--no-diagnose", "--jobs", "2", "--out", str(tmp_path / "out"),
                  cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    broken, hello = data["models"]
    assert broken["exit_code"] == 2 and "broken.tflite" in broken["error"] and hello["passed"]
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.get("errors") == "1"
    assert "simrun diff: error:" in (tmp_path / "out" / "models" / "broken.log.txt").read_text()


def test_suite_exit_code_is_the_worst_model():
    assert suite_exit_code([]) == 0
    assert suite_exit_code([{"exit_code": 0}, {"exit_code": 1}, {"exit_code": 3}]) == 3
    assert suite_exit_code([{"exit_code": 1}, {"exit_code": 0}]) == 1


def _job_pids(token: bytes, what: bytes = b"simrun.suite.job") -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and what in (entry / "cmdline").read_bytes() \
                    and token in (entry / "environ").read_bytes().split(b"\0"):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.integration
@pytest.mark.backends
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_suite_stops_every_job(models_dir, tmp_path, sig):
    token = f"SIMRUN_SUITE_TEST={tmp_path.name}".encode()
    env = dict(os.environ, PYTHONPATH=str(REPO), SIMRUN_SUITE_TEST=tmp_path.name)
    proc = subprocess.Popen([sys.executable, "-m", "simrun", "suite", str(models_dir / "kws_ref_model.tflite"),
                             str(models_dir / "vww_96_int8.tflite"), "--backends", BACKENDS, "--jobs", "2",
                             "--out", str(tmp_path / "out")], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(_job_pids(token)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert len(_job_pids(token)) == 2, "the two jobs never ran"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "simrun suite: interrupted" in err
    assert _job_pids(token) == set() and _job_pids(token, b"simrun.backends.worker") == set()


def test_progress_redraws_one_line_on_a_terminal_and_plain_lines_elsewhere(tmp_path):
    import io
    from simrun.suite.progress import SuiteProgress
    entries = _entries(tmp_path, 3)
    for tty in (True, False):
        stream = io.StringIO()
        p = SuiteProgress(entries, jobs=2, stream=stream, tty=tty, durations={"m0": 10.0, "m1": 10.0, "m2": 10.0})
        p.model_started(entries[0])
        p.backend(entries[0], "tflm-host", "started")
        status = p.status()
        assert status.startswith("0/3 done, 1 running, 2 left | m0 [tflm-host] | elapsed 0:00, about 0:1")
        p.model_done(entries[0], {"seconds": 4.0, "passed": True, "exit_code": 0})
        p.close()
        text = stream.getvalue()
        assert "[suite] m0: PASS in 4.0 s" in text
        if tty:
            assert "\r\x1b[2K[suite] 0/3 done, 1 running, 2 left | m0 [tflm-host]" in text
        else:
            assert "\x1b" not in text and "\r" not in text
            assert "[suite] m0: tflm-host started (0/3 done, 1 running, 2 left | m0 [tflm-host] |" in text


def test_durations_come_from_a_suite_summary(tmp_path):
    from simrun.suite.shard import load_durations
    good = tmp_path / "summary.json"
    good.write_text(json.dumps({"kind": "simrun-suite", "models": [{"id": "a", "seconds": 3.5}, {"id": "b", "seconds": None}]}))
    assert load_durations(good) == {"a": 3.5}
    bad = tmp_path / "other.json"
    bad.write_text('{"schema": 1, "model": {}}')          # a diff's summary.json, not a suite's
    with pytest.raises(BadInput, match="not a simrun suite summary.json"):
        load_durations(bad)


def test_spare_cores_go_to_the_last_diffs_backends(tmp_path):
    from simrun.suite.scheduler import core_share
    two = _entries(tmp_path, 1)[0]
    (tmp_path / "m.tflite").write_bytes(b"")
    three = load_suite([tmp_path / "m.tflite"], {"backends": "tflm-host,tflite-reference,tflite-optimized"})[0]
    assert core_share(two, free=2, pending=5) == 1          # more models than cores: one each
    assert core_share(two, free=2, pending=2) == 1
    assert core_share(two, free=2, pending=1) == 2          # the last model gets both cores
    assert core_share(two, free=4, pending=1) == 2          # never more than its backends
    assert core_share(three, free=4, pending=1) == 3
    # --jobs 4 over 3 models of 3 backends: 2, 1, 1 (the shares add up to --jobs, no more).
    shares, free = [], 4
    for left in (3, 2, 1):
        shares.append(core_share(three, free, left))
        free -= shares[-1]
    assert shares == [2, 1, 1]


@pytest.mark.integration
@pytest.mark.backends
def test_spare_cores_change_nothing_in_the_summary(models_dir, tmp_path):
    """A lone model gets both cores of --jobs 2 from the start; of two models, the one still
    running when the other ends may be granted the freed core (timing decides): either way
    the summary is --jobs 1's."""
    lone = [str(models_dir / "micro_speech_quantized.tflite")]
    pair = lone + [str(models_dir / "hello_world_int8.tflite")]
    three = "tflm-host,tflite-reference,tflite-optimized"
    for name, models, backends in (("lone", lone, BACKENDS), ("pair", pair, three)):
        runs = {}
        for jobs in (1, 2):
            out = tmp_path / f"{name}{jobs}"
            proc = _suite("suite", *models, "--backends", backends, "--jobs", str(jobs), "--out", str(out), cwd=tmp_path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            log = (out / "models" / "micro_speech_quantized.log.txt").read_text()
            share = jobs if name == "lone" else 1
            assert f"micro_speech_quantized: up to {share} backend(s) at once" in log
            if jobs == 1:
                assert "one core more" not in log
            runs[jobs] = json.loads((out / "summary.json").read_text())
        assert _comparable(runs[2]) == _comparable(runs[1])
        assert runs[1]["counts"]["passed"] == len(models)


@pytest.mark.integration
def test_a_bad_suite_baseline_is_a_usage_error(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"")
    diff_report = tmp_path / "diff"
    diff_report.mkdir()
    (diff_report / "summary.json").write_text('{"schema": 2, "comparisons": []}')
    for folder, message in ((tmp_path / "nowhere", "no readable suite summary.json"),
                            (diff_report, "not a simrun suite summary")):
        proc = _suite("suite", str(tmp_path / "m.tflite"), "--baseline", str(folder),
                      "--out", str(tmp_path / "out"), cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


@pytest.mark.integration
@pytest.mark.backends
def test_suite_baseline_says_per_model_what_got_better_or_worse(models, models_dir, tmp_path):
    """The baseline: a merge of two shards. conv: bit-exact then, one perturbed weight now
    (XNNPACK rounds it differently): regressed. flip: the other way round: improved. hello:
    unchanged. gone: only in the baseline. fresh: only in this run."""
    old, new, _ = models
    policy = tmp_path / "policy.toml"
    policy.write_text('[defaults]\npairs = ["*"]\n')

    def suite_file(name: str, rows: list[tuple[str, Path]]) -> Path:
        path = tmp_path / name
        path.write_text(f'[defaults]\nbackends = ["tflite-reference", "tflite-optimized"]\npolicy = "{policy}"\n'
                        f'diagnose = false\n' + "".join(f'[[models]]\nname = "{i}"\npath = "{p}"\n' for i, p in rows))
        return path
    hello = models_dir / "hello_world_int8.tflite"
    before = suite_file("before.toml", [("conv", old), ("flip", new), ("hello", hello),
                                        ("gone", models_dir / "micro_speech_quantized.tflite")])
    after = suite_file("after.toml", [("conv", new), ("flip", old), ("hello", hello), ("fresh", old)])
    for i in (1, 2):
        proc = _suite("suite", str(before), "--shard", f"{i}/2", "--jobs", "2", "--out", str(tmp_path / f"s{i}"), cwd=tmp_path)
        assert proc.returncode in (0, 1), proc.stderr
    assert _suite("merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(tmp_path / "base"),
                  cwd=tmp_path).returncode == 0

    proc = _suite("suite", str(after), "--baseline", str(tmp_path / "base"), "--jobs", "2",
                  "--out", str(tmp_path / "now"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr       # conv's regression, by diff's rules
    data = json.loads((tmp_path / "now" / "summary.json").read_text())
    status = {m["id"]: m["baseline"]["status"] for m in data["models"]}
    assert status == {"conv": "regressed", "flip": "improved", "hello": "unchanged", "fresh": "new"}
    assert {m["id"]: m["exit_code"] for m in data["models"]} == {"conv": 1, "flip": 0, "hello": 0, "fresh": 0}
    conv = next(m for m in data["models"] if m["id"] == "conv")
    assert any("was bit-exact, now differs" in t for t in conv["baseline"]["regressions"])
    assert any(f.startswith("baseline: ") for f in conv["failures"])
    assert data["baseline"] == {"path": str(tmp_path / "base"), "missing": ["gone"], "regressed": ["conv"],
                                "improved": ["flip"], "unchanged": ["hello"], "new": ["fresh"],
                                "not compared": []}
    line = "1 regressed, 1 improved, 1 unchanged, 1 new; no longer in the suite: gone"
    assert line in proc.stdout and "conv: REGRESSION:" in proc.stdout and "flip: improved:" in proc.stdout
    md = (tmp_path / "now" / "summary.md").read_text()
    assert line in md and "| vs baseline |" in md and "| regressed (3) |" in md and "## Against the baseline" in md
    assert "<th>vs baseline</th>" in (tmp_path / "now" / "index.html").read_text()
    # Each model's own report holds the diff's baseline section, as diff --baseline writes it.
    own = json.loads((tmp_path / "now" / "models" / "conv" / "summary.json").read_text())["baseline"]
    assert own["path"] == str((tmp_path / "base" / "models" / "conv" / "summary.json").resolve())
    assert not own["passed"]


def test_prebuild_asks_for_each_target_variant_once(tmp_path, monkeypatch):
    """The variants the entries name, each once, with their rounding and fp-contract, the
    sources checked once for all; the ELFs come back by label for the jobs (no build here:
    ensure_firmware is replaced by a recorder)."""
    import simrun.device.build as build
    import simrun.device.sources as device_sources
    from simrun.suite.scheduler import prebuild
    monkeypatch.delenv("SIMRUN_SOURCES_DIR", raising=False)
    checked = []
    real_state = device_sources.state
    monkeypatch.setattr(device_sources, "state", lambda d: checked.append(d) or real_state(d))
    asked = []

    class Found:
        def __init__(self, cpu, kernels):
            self.elf = tmp_path / f"{cpu}-{kernels}.elf"

    def ensure(cpu, kernels, **kw):
        asked.append((cpu, kernels, kw["rounding"], kw["fp_contract"], kw["source_state"].root))
        return Found(cpu, kernels)
    monkeypatch.setattr(build, "ensure_firmware", ensure)
    for name in ("a", "b"):
        (tmp_path / f"{name}.tflite").write_bytes(b"")
    labels = "tflm-host,target:cortex-m4:reference,target:cortex-m55:cmsis-nn:single-rounding:no-fp-contract"
    entries = load_suite([tmp_path / "a.tflite", tmp_path / "b.tflite"], {"backends": labels})
    said = []
    assert prebuild(entries, None, said.append) == {
        "target:cortex-m4:reference": tmp_path / "cortex-m4-reference.elf",
        "target:cortex-m55:cmsis-nn:single-rounding:no-fp-contract": tmp_path / "cortex-m55-cmsis-nn.elf"}
    assert asked == [("cortex-m4", "reference", "double", "fast", None),
                     ("cortex-m55", "cmsis-nn", "single", "off", None)]
    assert checked == [None]
    assert said[0] == "firmware for target:cortex-m4:reference"


def test_the_biggest_models_start_first_unless_durations_say_otherwise(tmp_path):
    from simrun.suite.scheduler import start_order
    for name, size in (("a", 10), ("b", 300), ("c", 10), ("d", 50)):
        (tmp_path / f"{name}.tflite").write_bytes(b"x" * size)
    entries = load_suite([tmp_path / f"{n}.tflite" for n in "abcd"], {"backends": BACKENDS})
    assert [e.id for e in start_order(entries, None)] == ["b", "d", "a", "c"]
    assert [e.id for e in start_order(entries, {"a": 9.0, "c": 20.0})] == ["c", "a", "b", "d"]


def test_a_freed_core_goes_to_the_running_job_with_most_backends_waiting(tmp_path):
    from simrun.suite import scheduler

    class Proc:
        returncode = None
        pid = 0

    class Fake(scheduler._Job):
        def __init__(self, entry, started):
            self.entry, self.cores, self.record, self.started = entry, 1, None, set(started)
            self.proc, self.granted = Proc(), 0

        def grant(self):
            self.granted += 1
            self.cores += 1
    (tmp_path / "m.tflite").write_bytes(b"")
    three = load_suite([tmp_path / "m.tflite"], {"backends": "tflm-host,tflite-reference,tflite-optimized"})[0]
    busy = Fake(three, ["tflm-host"])                   # two backends still waiting
    nearly = Fake(three, ["tflm-host", "tflite-reference"])
    fresh = Fake(three, [])                             # no event yet: its handler may not be in place
    scheduler._hand_out_spare_cores([nearly, busy, fresh], jobs=4)
    assert (busy.granted, nearly.granted, fresh.granted) == (1, 0, 0)   # then it has one waiting, as nearly
    done = Fake(three, ["tflm-host", "tflite-reference", "tflite-optimized"])
    scheduler._hand_out_spare_cores([done], jobs=2)
    assert done.granted == 0                            # nothing left to start: the core stays free
