"""Where the upstream sources for the firmware come from.

Either a local directory holding the five trees (--sources DIR or the
SIMRUN_SOURCES_DIR environment variable), handed to CMake as
FETCHCONTENT_SOURCE_DIR_<NAME>, or nothing: then CMake downloads the pinned
archives itself (cmake/fetch_sources.cmake). The pins below must match that file.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourcesMissing

ENV_VAR = "SIMRUN_SOURCES_DIR"


@dataclass(frozen=True)
class SourceTree:
    dirname: str        # directory under the sources dir
    fetch_name: str     # FetchContent name: FETCHCONTENT_SOURCE_DIR_<upper>
    pin: str            # commit or tag the firmware is built and tested against
    probe: str          # a file every real tree of this kind has
    # A tree without .git (an extracted archive) has no commit to read: these files,
    # hashed as witness_digest() does, tell the pinned version from most others
    # (they change with releases and most commits). Digests taken from trees at the pins.
    witness_files: tuple[str, ...] = ()
    witness: str = ""


TREES = (
    SourceTree("tflite-micro", "tflite_micro", "90b983c2b3f1480642e040bbd2ddb37b998f3424",
               "tensorflow/lite/micro/micro_interpreter.h",
               ("tensorflow/lite/micro/micro_interpreter.h", "tensorflow/lite/micro/micro_mutable_op_resolver.h",
                "tensorflow/lite/micro/kernels/micro_ops.h", "tensorflow/lite/micro/micro_allocator.cc",
                "tensorflow/lite/schema/schema_generated.h"), "fdd60cb6a4478e07"),
    SourceTree("CMSIS-NN", "cmsis_nn", "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae", "Include/arm_nnfunctions.h",
               ("ARM.CMSIS-NN.pdsc", "Include/arm_nnfunctions.h", "Include/arm_nnsupportfunctions.h"),
               "9b791cc2c61d9e08"),
    SourceTree("CMSIS_6", "cmsis_6", "5782d6f8057906d360f4b95ec08a2354afe5c9b9",
               "CMSIS/Core/Include/cmsis_compiler.h",
               ("ARM.CMSIS.pdsc", "CMSIS/Core/Include/cmsis_version.h", "CMSIS/Core/Include/cmsis_compiler.h"),
               "359b203b48c3ae8d"),
    SourceTree("flatbuffers", "flatbuffers", "v25.9.23", "include/flatbuffers/flatbuffers.h",
               ("include/flatbuffers/base.h", "include/flatbuffers/flatbuffers.h"), "2b3460bd2f538d5f"),
    SourceTree("gemmlowp", "gemmlowp", "719139ce755a0f31cbf1c37f7f98adcc7fc9f425", "fixedpoint/fixedpoint.h",
               ("fixedpoint/fixedpoint.h", "internal/common.h"), "9c3ae3f74c75dcee"),
)

HOW_TO_PROVIDE = (
    "pass --sources DIR (or set SIMRUN_SOURCES_DIR) to a directory holding "
    + ", ".join(f"{t.dirname}/ at {t.pin}" for t in TREES)
    + "; or leave both unset on a machine with network access so CMake downloads them")


def missing_trees(root: Path) -> list[str]:
    return [t.dirname for t in TREES if not (root / t.dirname / t.probe).is_file()]


def witness_digest(tree: Path, files: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for rel in files:
        try:
            data = (tree / rel).read_bytes()
        except OSError:
            data = b"<missing>"
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


def _git_commit(tree: Path, rev: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def wrong_pins(root: Path) -> list[str]:
    """One sentence per tree that is not at its pin: by git commit where the tree is a
    git checkout, else by its witness files."""
    wrong = []
    # Two `git rev-parse` per checkout: asked for all trees at once (a suite's prebuild and every
    # firmware lookup wait for them).
    with ThreadPoolExecutor(max_workers=2 * len(TREES)) as pool:
        commits = {(t.dirname, rev): pool.submit(_git_commit, root / t.dirname, rev)
                   for t in TREES if (root / t.dirname / ".git").exists() for rev in ("HEAD", t.pin)}
    for t in TREES:
        tree = root / t.dirname
        if (t.dirname, "HEAD") in commits:
            head, pin = commits[(t.dirname, "HEAD")].result(), commits[(t.dirname, t.pin)].result() or t.pin
            if head and head != pin:
                wrong.append(f"{t.dirname}/ is at commit {head[:12]}, not at the pin {t.pin} "
                             f"(git -C {tree} checkout {t.pin})")
        elif t.witness and witness_digest(tree, t.witness_files) != t.witness:
            wrong.append(f"{t.dirname}/ is not at the pin {t.pin} ({', '.join(t.witness_files)} differ "
                         f"from that version's)")
    return wrong


def local_sources() -> Path | None:
    """The complete local source directory named by SIMRUN_SOURCES_DIR, or None.

    Tests use this to decide whether TFLM firmware can be built here."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    root = Path(value).expanduser()
    return root if root.is_dir() and not missing_trees(root) else None


def resolve(sources_dir: str | Path | None) -> Path | None:
    """The local source directory to build from, or None to let CMake download.

    A directory that is named (argument or environment) but incomplete is an
    error here, before CMake starts."""
    origin = "--sources"
    if sources_dir is None and os.environ.get(ENV_VAR):
        sources_dir, origin = os.environ[ENV_VAR], ENV_VAR
    if sources_dir is None:
        return None
    root = Path(sources_dir).expanduser().resolve()
    if not root.is_dir():
        raise SourcesMissing(f"{origin}: {root} is not a directory; {HOW_TO_PROVIDE}")
    missing = missing_trees(root)
    if missing:
        raise SourcesMissing(
            f"{origin}: {root} lacks {', '.join(missing)}; {HOW_TO_PROVIDE}")
    wrong = wrong_pins(root)
    if wrong:
        # The firmware, its cache key and every result are claimed to be at the pins.
        raise SourcesMissing(f"{origin}: {root}: {'; '.join(wrong)}; {HOW_TO_PROVIDE}")
    return root


def cmake_args(root: Path | None) -> list[str]:
    if root is None:
        return []
    return [f"-DFETCHCONTENT_SOURCE_DIR_{t.fetch_name.upper()}={root / t.dirname}" for t in TREES]


@dataclass(frozen=True)
class SourceState:
    """The checked source directory (None: CMake downloads) and its identity: computed once by
    a caller that plans several variants (a suite's prebuild), not once per variant."""
    root: Path | None
    identity: dict[str, str]


def state(sources_dir: str | Path | None) -> SourceState:
    root = resolve(sources_dir)
    return SourceState(root, identity(root))


def identity(root: Path | None) -> dict[str, str]:
    """What the sources are, for the cache key and the metadata: the pins when
    CMake downloads them, a fingerprint of each local tree otherwise."""
    if root is None:
        return {t.dirname: f"download:{t.pin}" for t in TREES}
    return {t.dirname: f"local:{t.pin}:{tree_fingerprint(root / t.dirname)}" for t in TREES}


def tree_fingerprint(tree: Path) -> str:
    # Paths, sizes and mtimes: cheap (a few thousand stats) and changes whenever
    # a file is edited, added or removed; content hashing would cost seconds.
    # What os.walk(tree) would visit, in its top-down order (a directory's files, sorted, then
    # its subdirectories, sorted, .git left out, symlinked ones listed but not entered), with
    # scandir and string paths: the same digest (it is part of every firmware cache key) in
    # about half the time, which a suite's prebuild and every firmware lookup pay.
    h = hashlib.sha256()

    def visit(path: str, rel: str) -> None:
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            return                      # as os.walk: a directory it cannot list is skipped
        dirs, files = [], []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry)
        for entry in sorted(files, key=lambda e: e.name):
            st = os.stat(entry.path)
            h.update(f"{rel}{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        for entry in sorted(dirs, key=lambda e: e.name):
            if entry.name != ".git" and not entry.is_symlink():
                visit(entry.path, f"{rel}{entry.name}/")
    visit(str(tree), "")
    return h.hexdigest()[:16]
