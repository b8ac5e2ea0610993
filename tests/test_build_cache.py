"""The firmware cache around the build: `simrun cache` (list, prune, key), `simrun build`
over variant lists, the build's progress line and per-file figure, and ccache.

Everything here runs on synthetic cache dirs and recorded CMake output, except
two tests: the error path of `simrun build` with a fake toolchain (shell scripts
on PATH: `integration`), and the warm-cache test, which runs only with
SIMRUN_SOURCES_DIR set and only on variants already in the cache (it asserts
that nothing is built).
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from simrun.cli import main as cli_main
from simrun.device import build, build_progress, cache_store, ccache
from simrun.device.targets import get_target
from simrun.errors import EXIT_USAGE

# Recorded from a cold cortex-m4 build here (paths shortened).
RECORDED = """\
configuring /cache/build/cortex-m4-042476ec0a3f-f2af6c09
-- Configuring done
[  1%] Building CXX object CMakeFiles/tflm_common.dir/src/tflite-micro/tensorflow/lite/micro/micro_log.cc.obj
[  1%] Building CXX object CMakeFiles/tflm_common.dir/src/tflite-micro/tensorflow/lite/micro/micro_utils.cc.obj
In file included from /src/tflite-micro/tensorflow/lite/micro/micro_utils.cc:16:
[  2%] Building CXX object CMakeFiles/tflm_common.dir/src/tflite-micro/tensorflow/lite/core/c/common.cc.obj
[  3%] Building C object CMakeFiles/simrun_reference.dir/firmware/src/abi_state.c.obj
[ 50%] Built target tflm_common
[100%] Linking CXX executable simrun_reference.elf
"""


# --- progress -------------------------------------------------------------------

def test_progress_counts_compile_steps_and_estimates_time_left():
    p = build_progress.BuildProgress(total=10, started=100.0)
    steps = [p.feed(line) for line in RECORDED.splitlines()]
    assert steps.count(True) == 4 and p.done == 4 and p.percent == 3
    # 4 files in 80 s: 20 s a file, 6 files left.
    assert p.status(now=180.0) == "[4/10 files, about 2 min left]"
    assert p.status(now=104.0) == "[4/10 files, about 6 s left]"


def test_progress_without_total_says_cmakes_percentage_and_a_rebuilt_object_raises_the_total():
    p = build_progress.BuildProgress(total=None, started=0.0)
    assert p.status(now=1.0) is None            # nothing compiled yet: no claim
    for line in RECORDED.splitlines():
        p.feed(line)
    assert p.status(now=8.0) == "[4 files, CMake at 3%]"
    floor = build_progress.BuildProgress(total=2, started=0.0)
    for line in RECORDED.splitlines():
        floor.feed(line)
    assert floor.total == 4 and floor.status(now=8.0) == "[4/4 files, about 0 s left]"


def _fake_tree(tree: Path, built: int) -> None:
    objs = [f"CMakeFiles/simrun_reference.dir/firmware/src/f{i}.cc.obj" for i in range(3)]
    external = [str(tree / f"CMakeFiles/tflm_common.dir/src/k{i}.cc.obj") for i in range(5)]
    make = ("# CMAKE generated file\nsimrun_reference_OBJECTS = \\\n" + "".join(f'"{o}" \\\n' for o in objs)
            + "\n# External object files\nsimrun_reference_EXTERNAL_OBJECTS = \\\n"
            + "".join(f'"{o}" \\\n' for o in external) + "\nsimrun_reference.elf: x\n")
    (tree / "CMakeFiles/simrun_reference.dir").mkdir(parents=True)
    (tree / "CMakeFiles/simrun_reference.dir/build.make").write_text(make)
    for path in [tree / o for o in objs][:built]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"obj")


def test_objects_to_compile_counts_the_targets_missing_objects(tmp_path):
    _fake_tree(tmp_path, built=2)
    files = build_progress.object_files((tmp_path / "CMakeFiles/simrun_reference.dir/build.make").read_text(),
                                        tmp_path)
    assert len(files) == 8 and all(f.is_absolute() for f in files)
    assert build_progress.objects_to_compile(tmp_path, "simrun_reference") == 6
    assert build_progress.objects_to_compile(tmp_path, "simrun_cmsis-nn") is None


def test_objects_older_than_their_targets_flags_count_as_to_compile(tmp_path):
    """A configure that changed the flags (precompiled headers switched on) rewrites
    flags.make; every object built before it compiles again, so the total must say so."""
    _fake_tree(tmp_path, built=3)
    common = tmp_path / "CMakeFiles/tflm_common.dir"
    for i in range(5):
        (common / f"src/k{i}.cc.obj").parent.mkdir(parents=True, exist_ok=True)
        (common / f"src/k{i}.cc.obj").write_bytes(b"obj")
    assert build_progress.objects_to_compile(tmp_path, "simrun_reference") == 0
    flags = common / "flags.make"
    flags.write_text("CXX_FLAGS = -O2 -include cmake_pch.hxx\n")
    later = (common / "src/k0.cc.obj").stat().st_mtime + 10
    os.utime(flags, (later, later))
    assert build_progress.objects_to_compile(tmp_path, "simrun_reference") == 5


def test_doctor_figure_comes_from_the_last_build_else_the_default(tmp_path):
    seconds, where = build_progress.first_build_estimate(tmp_path)
    assert seconds == build_progress.DEFAULT_SECONDS_PER_FILE * build_progress.FIRST_BUILD_FILES
    assert "default" in where
    small = build_progress.BuildProgress(total=None, started=0.0, done=3)
    build_progress.record_figure(tmp_path, small, "cortex-m4", now=30.0)     # too few files: no figure
    assert build_progress.load_figure(tmp_path) is None
    big = build_progress.BuildProgress(total=None, started=0.0, done=100)
    build_progress.record_figure(tmp_path, big, "cortex-m4", now=250.0)
    seconds, where = build_progress.first_build_estimate(tmp_path)
    assert seconds == pytest.approx(2.5 * build_progress.FIRST_BUILD_FILES) and "measured" in where
    (tmp_path / build_progress.FIGURE_FILE).write_text("{not json")
    assert build_progress.load_figure(tmp_path) is None


# --- ccache ---------------------------------------------------------------------

def _fake_ccache(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "ccache"
    tool.write_text("#!/bin/sh\nexec \"$@\"\n")
    tool.chmod(0o755)
    return bindir


def test_configure_carries_the_ccache_launcher_only_when_ccache_is_there(tmp_path):
    bindir = _fake_ccache(tmp_path)
    found = ccache.launcher({"PATH": str(bindir)})
    assert found == str(bindir / "ccache")
    assert ccache.launcher({"PATH": str(tmp_path / "empty")}) is None
    assert ccache.launcher({"PATH": str(bindir), "SIMRUN_CCACHE": "0"}) is None
    target = get_target("cortex-m4")
    args = ("cmake", tmp_path / "tree", target, None, tmp_path)
    with_it = build.configure_command(*args, launcher=found)
    without = build.configure_command(*args, launcher=None)
    assert f"-DCMAKE_C_COMPILER_LAUNCHER={found}" in with_it
    assert f"-DCMAKE_CXX_COMPILER_LAUNCHER={found}" in with_it
    assert not any("LAUNCHER" in a for a in without)
    assert [a for a in with_it if "LAUNCHER" not in a] == without


def test_ccache_store_lives_in_the_simrun_cache_and_the_key_ignores_it(tmp_path):
    env = ccache.environment(tmp_path / "cache", tmp_path / "sources", {"PATH": "/bin"})
    assert env["CCACHE_DIR"] == str(tmp_path / "cache" / "ccache")
    assert env["CCACHE_BASEDIR"] == str(tmp_path / "sources") and env["PATH"] == "/bin"
    mine = ccache.environment(tmp_path, None, {"CCACHE_DIR": "/elsewhere"})
    assert mine["CCACHE_DIR"] == "/elsewhere" and mine["CCACHE_BASEDIR"] == str(tmp_path)
    # The key inputs take no launcher: nothing about ccache can reach them.
    import inspect
    assert "launcher" not in inspect.signature(build.key_inputs).parameters
    assert "launcher" not in inspect.signature(build.cmake_defines).parameters


# --- cache listing and pruning --------------------------------------------------

def _entry(cache: Path, name: str, cpu: str, kernels: str, age_days: float, rounding="double") -> Path:
    entry = cache / "firmware" / name
    entry.mkdir(parents=True)
    (entry / "firmware.elf").write_bytes(b"\x7fELF" + b"\0" * 1000)
    (entry / "metadata.json").write_text(json.dumps({
        "cpu": cpu, "kernels": kernels, "rounding": rounding, "fp_contract": "fast", "elf_bytes": 1004,
        "sources": {"tflite-micro": "0123456789abcdef"}, "source_identity": {"tflite-micro": "download:0123"}}))
    stamp = time.time() - age_days * 86400
    for p in (entry / "metadata.json", entry):
        os.utime(p, (stamp, stamp))
    return entry


def _tree(cache: Path, name: str, age_days: float) -> Path:
    tree = cache / "build" / name
    tree.mkdir(parents=True)
    (tree / "CMakeCache.txt").write_text("x" * 5000)
    stamp = time.time() - age_days * 86400
    os.utime(tree / "CMakeCache.txt", (stamp, stamp))
    (cache / "locks").mkdir(exist_ok=True)
    (cache / "locks" / f"{name}.lock").touch()
    return tree


@pytest.fixture
def synthetic_cache(tmp_path):
    cache = tmp_path / "cache"
    old = _entry(cache, "cortex-m4-reference-aaaaaaaaaaaaaaaaaaaa", "cortex-m4", "reference", 40)
    new = _entry(cache, "cortex-m4-cmsis-nn-bbbbbbbbbbbbbbbbbbbb", "cortex-m4", "cmsis-nn", 1)
    old55 = _entry(cache, "cortex-m55-reference-single-rounding-cccccccccccccccccccc", "cortex-m55",
                   "reference", 50, rounding="single")
    tree4 = _tree(cache, "cortex-m4-042476ec0a3f-f2af6c09", 40)
    tree55 = _tree(cache, "cortex-m55-21123f350dbb-single-rounding-f2af6c09", 50)
    (cache / "downloads").mkdir()
    (cache / "downloads" / "x").write_bytes(b"1" * 2048)
    return cache, {"old": old, "new": new, "old55": old55, "tree4": tree4, "tree55": tree55}


def test_list_shows_entries_with_their_variant_and_trees_with_sizes(synthetic_cache, capsys):
    cache, paths = synthetic_cache
    listing = cache_store.list_cache(cache)
    by_name = {e.path.name: e for e in listing.entries}
    e55 = by_name[paths["old55"].name]
    assert (e55.cpu, e55.kernels, e55.rounding, e55.suffix) == ("cortex-m55", "reference", "single",
                                                                "-single-rounding")
    assert e55.size == 1004 + len((paths["old55"] / "metadata.json").read_bytes())
    assert e55.last_used < time.time() - 49 * 86400
    assert {t.path.name: t.size for t in listing.trees}[paths["tree4"].name] == 5000
    assert listing.other == {"downloads": 2048}
    assert cli_main(["cache", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "firmware entries (3)" in out and "CMake trees (2)" in out and "single" in out
    assert "40 d ago" in out and "download tflite-micro@0123456789" in out


def test_prune_removes_old_entries_and_trees_but_not_what_a_build_holds(synthetic_cache, capsys):
    cache, paths = synthetic_cache
    # Another process's builder: an flock on the cortex-m55 single-rounding tree's lock.
    with open(cache / "locks" / f"{paths['tree55'].name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert cli_main(["cache", "prune", "--older-than", "30", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert not paths["old"].exists() and not paths["tree4"].exists()
    assert paths["new"].exists()                                  # used a day ago
    assert paths["old55"].exists() and paths["tree55"].exists()   # held by the builder
    assert out.count("kept ") == 2 and "a build holds" in out
    assert not list((cache / "firmware").glob("*.pruning*"))
    assert (cache / "locks" / f"{paths['tree4'].name}.lock").exists()   # lock files stay
    # Unheld now: it goes; --keep-trees keeps the tree.
    result = cache_store.prune(cache, 30, keep_trees=True)
    assert [p for p, _ in result.removed] == [paths["old55"]] and paths["tree55"].exists()


def test_a_cache_hit_marks_the_entry_used_so_prune_keeps_it(synthetic_cache, monkeypatch):
    cache, paths = synthetic_cache
    request = build.FirmwareRequest(get_target("cortex-m4"), "reference", "double", "fast", None, cache, {})
    monkeypatch.setattr(build.FirmwareRequest, "entry", property(lambda self: paths["old"]))
    assert build.cached_firmware(request) is not None
    removed = [p for p, _ in cache_store.prune(cache, 30, keep_trees=True).removed]
    assert removed == [paths["old55"]] and paths["old"].exists()


def test_prune_removes_leftovers_of_dead_publishes(tmp_path):
    cache = tmp_path
    dead = cache / "firmware" / "cortex-m4-reference-aaaa.tmp999999999"
    dead.mkdir(parents=True)
    mine = cache / "firmware" / f"cortex-m4-reference-bbbb.tmp{os.getpid()}"    # a live process's publish
    mine.mkdir()
    result = cache_store.prune(cache, 30)
    assert not dead.exists() and mine.exists() and [p for p, _ in result.removed] == [dead]


def test_prune_refuses_negative_days(tmp_path, capsys):
    assert cli_main(["cache", "prune", "--older-than", "-1", "--cache-dir", str(tmp_path)]) == EXIT_USAGE
    assert "DAYS must be 0 or more" in capsys.readouterr().err


# --- build over variant lists ---------------------------------------------------

def test_variant_lists_expand_cpu_major_and_bad_names_are_one_clear_error(capsys):
    from simrun.commands.variants import Variant, variants
    from simrun.cli import make_parser
    args = make_parser().parse_args(["build", "--cpu", "cortex-m55,cortex-m4", "--kernels", "reference,cmsis-nn",
                                     "--rounding", "double,single"])
    got = variants(args)
    assert len(got) == 8 and got[0] == Variant("cortex-m55", "reference", "double", "fast")
    assert got[-1] == Variant("cortex-m4", "cmsis-nn", "single", "fast")
    every = variants(make_parser().parse_args(["build", "--all"]))
    assert len(every) == len({v.cpu for v in every}) * 2 * 2 * 2 and len(set(every)) == len(every)
    assert cli_main(["build", "--cpu", "cortex-m55,cortex-m99"]) == EXIT_USAGE
    assert "unknown 'cortex-m99'" in capsys.readouterr().err
    assert cli_main(["build"]) == EXIT_USAGE
    assert "--cpu is required" in capsys.readouterr().err


def _fake_toolchain(tmp_path: Path) -> Path:
    """arm-none-eabi-* that answer --version and the feature-macro query, and a cmake
    whose configure fails: the error path of a build, with no compiler run."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    scripts = {
        "arm-none-eabi-gcc": 'case "$*" in *--version*) echo "fake-gcc 1.0";; '
                             '*-dM*) echo "#define __ARM_FEATURE_DSP 1";; esac',
        "arm-none-eabi-g++": "exit 0", "arm-none-eabi-size": "exit 0",
        "cmake": 'echo "CMake Error at CMakeLists.txt:1: the fake toolchain refuses"; exit 1',
    }
    for name, body in scripts.items():
        (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bindir / name).chmod(0o755)
    return bindir


@pytest.mark.integration
def test_build_list_stops_at_a_failing_build_and_says_what_was_not_reached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", f"{_fake_toolchain(tmp_path)}:/usr/bin:/bin")
    monkeypatch.delenv("SIMRUN_SOURCES_DIR", raising=False)
    monkeypatch.setenv("SIMRUN_CCACHE", "0")
    code = cli_main(["build", "--cpu", "cortex-m4", "--kernels", "reference,cmsis-nn",
                     "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == build.BuildFailed.exit_code
    assert "2 variants: 0 cached, 2 to build" in err
    assert "cmake configure failed for cortex-m4" in err and "the fake toolchain refuses" in err
    assert "stopped at target:cortex-m4:reference; not reached: target:cortex-m4:cmsis-nn" in err
    assert not list((tmp_path / "cache" / "firmware").glob("*"))


@pytest.mark.tflm
def test_build_list_on_the_warm_cache_builds_nothing(capsys):
    """Only variants already in the cache: the test fails (rather than build for many
    minutes) if one is missing."""
    if not os.environ.get("SIMRUN_SOURCES_DIR"):
        pytest.skip("set SIMRUN_SOURCES_DIR (and a warm SIMRUN_CACHE_DIR) to run this")
    wanted = ["--cpu", "cortex-m4", "--kernels", "reference,cmsis-nn"]
    from simrun.commands.variants import variants
    from simrun.cli import make_parser
    for v in variants(make_parser().parse_args(["build", *wanted])):
        request = build.plan_firmware(v.cpu, v.kernels)
        if build.load_entry(request.entry) is None:
            pytest.skip(f"{request.label} is not in the cache; this test must not build it")
    cache = build.default_cache_dir()
    trees_before = sorted(p.name for p in (cache / "build").iterdir())
    assert cli_main(["build", *wanted]) == 0
    out, err = capsys.readouterr()
    assert "2 variants: 2 cached, 0 to build" in err and err.count("cached: ") == 2
    assert "configuring" not in err and len(out.split()) == 2 and all(p.endswith("firmware.elf") for p in out.split())
    assert sorted(p.name for p in (cache / "build").iterdir()) == trees_before


def test_the_shown_build_line_is_short_and_keeps_the_status():
    from simrun.commands.build import _shorten
    line = ("[ 40%] Building CXX object CMakeFiles/tflm_common.dir/src/kernels/conv.cc.obj "
            "[64/162 files, about 8 min left]")
    assert _shorten(line) == "[ 40%] conv.cc [64/162 files, about 8 min left]"
    assert _shorten("[ 40%] Building CXX object CMakeFiles/x.dir/a/conv.cc.obj") == "[ 40%] conv.cc"


@pytest.mark.integration
def test_compile_steps_carry_files_done_of_the_objects_missing(tmp_path):
    """compile_variant with a cmake that replays recorded output: the status follows each step."""
    tree = tmp_path / "tree"
    _fake_tree(tree, built=0)
    fake = tmp_path / "cmake"
    (tmp_path / "recorded.txt").write_text(RECORDED)
    fake.write_text(f"#!/bin/sh\ncat {tmp_path / 'recorded.txt'}\n")
    fake.chmod(0o755)
    said: list[str] = []
    build.compile_variant(str(fake), tree, "simrun_reference", said.append, None, tmp_path, "cortex-m4")
    steps = [line for line in said if "Building" in line]
    assert len(steps) == 4 and all(s.endswith(" left]") for s in steps)
    assert [s.rsplit("[", 1)[1].split(" files")[0] for s in steps] == ["1/8", "2/8", "3/8", "4/8"]
    assert "In file included from" in " ".join(said)              # other lines pass unchanged
    assert build_progress.load_figure(tmp_path) is None            # 4 files: too few for a figure


def _walk_fingerprint(tree: Path) -> str:
    """The fingerprint as it was first written (os.walk): every firmware cache key holds it,
    so the faster walk must give the same digest."""
    import hashlib
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), tree)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def test_source_tree_fingerprint_is_the_os_walk_one_and_sees_edits(tmp_path):
    from simrun.device import sources
    tree = tmp_path / "tree"
    for rel in ("b.c", "a.h", "sub/x.cc", "sub/deeper/y.cc", "Sub2/z", ".git/HEAD", "sub/.git/config"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(rel)
    (tree / "link-to-sub").symlink_to(tree / "sub")          # listed as a directory, not entered
    (tree / "sub" / "link.c").symlink_to(tree / "b.c")       # a file: its target's size and mtime
    first = sources.tree_fingerprint(tree)
    assert first == _walk_fingerprint(tree)
    (tree / "sub" / "deeper" / "y.cc").write_text("edited, longer")
    assert sources.tree_fingerprint(tree) == _walk_fingerprint(tree) != first
    (tree / ".git" / "HEAD").write_text("ignored")
    assert sources.tree_fingerprint(tree) == _walk_fingerprint(tree)
