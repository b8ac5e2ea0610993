"""Build (or fetch from the cache) the TFLM firmware ELF for one CPU and kernel variant.

    fw = ensure_firmware("cortex-m55", "cmsis-nn")
    fw.elf        # Path to the ELF (inside the cache; do not modify)
    fw.metadata   # cpu, kernels, rounding, cmsis_nn_path, sources, flags, compiler, sizes...
    ensure_firmware("cortex-m55", "reference", rounding="single")  # single-rounding requantization
    ensure_firmware("cortex-m4", "reference", fp_contract="off")    # no fused multiply-add (-ffp-contract=off)

Layout under the cache dir (SIMRUN_CACHE_DIR, default ~/.cache/simrun):
    firmware/<cpu>-<kernels>[-single-rounding][-no-fp-contract]-<key>/{firmware.elf, metadata.json}
                                                                 finished, immutable
    build/<cpu>-<tree key>[-no-fp-contract]-<source dir id>/   CMake tree, reused
    locks/<tree name>.lock
The key hashes everything that changes the binary. The CMake tree is shared by
both kernel variants of a CPU, so their common TFLM objects compile once; an
flock on it serialises builders (two processes asking for the same firmware
build it once). The tree holds both rounding modes too: firmware/src/source_split.py
reads which files' objects the rounding switches cannot change (at the pins, all
but about 60 of 280: common.cc, quantization_util.cc, the kernels that use
common.h's inline requantization helpers, most of CMSIS-NN), so a second mode
compiles only those. Precompiled headers (SIMRUN_PCH, CMakeLists.txt) make the
rest several times faster to compile (bench/build_time.py). A CMake
tree is tied to its source dir (resources.root(): a checkout or an installed
package), so the tree name ends with that dir's id: two checkouts sharing one
cache each get their own tree.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from . import build_progress, ccache, sources
from .firmware_entry import (Firmware, firmware_versions, load_entry, publish,  # noqa: F401 (importers use build.*)
                             read_metadata, section_sizes)
from .. import errors, resources
from ..errors import BadInput, SimrunError, SourcesMissing
from ..backend_id import FirmwareVariant, check_fp_contract, check_rounding  # noqa: F401 (re-exported)
from .targets import DEFAULT_FP_CONTRACT, DEFAULT_ROUNDING, Target, UnknownTarget, check_variant, get_target

# Our files that shape the binary (under resources.root(), the CMake source
# dir: the checkout or the installed package); any edit gives a new cache key.
FIRMWARE_INPUTS = ("CMakeLists.txt", "cmake", "firmware/src", "firmware/boards", "firmware/include")
OPT_FLAGS = "-O2"
JOBS = 2
INSTALL_HINT = ("install it, e.g. `apt-get install cmake gcc-arm-none-eabi libnewlib-arm-none-eabi "
                "libstdc++-arm-none-eabi-newlib`, or put it on PATH")

PCH_SWITCH = "SIMRUN_PCH"
SHARE_SWITCH = "SIMRUN_SHARE_ROUNDING"
LAUNCHER_SWITCH = "SIMRUN_COMPILER_LAUNCHER"
CACHE_FIX = "set SIMRUN_CACHE_DIR (or --cache-dir) to a writable directory"

Progress = Callable[[str], None]


class BuildFailed(SimrunError):
    """CMake or the compiler failed; the message ends with the tail of the build log."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("SIMRUN_CACHE_DIR") or Path.home() / ".cache" / "simrun").expanduser()


def require_tool(name: str) -> str:
    return errors.require_tool(name, INSTALL_HINT)


@lru_cache(maxsize=None)
def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown"


@lru_cache(maxsize=None)
def cmsis_nn_path_for(gcc: str, flags: tuple[str, ...]) -> str:
    """The code path CMSIS-NN compiles for these flags, decided as its
    arm_nn_math_types.h decides it: from the compiler's ACLE feature macros."""
    out = subprocess.run([gcc, *flags, "-dM", "-E", "-x", "c", "-"], input="", capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise BuildFailed(f"{gcc} rejects the flags {' '.join(flags)}:\n{out.stderr.strip()}")
    macros = dict(line.split(" ", 2)[1:] for line in out.stdout.splitlines()
                  if line.startswith("#define ") and line.count(" ") >= 2)
    if int(macros.get("__ARM_FEATURE_MVE", "0")) & 1:
        return "mve"
    return "dsp" if macros.get("__ARM_FEATURE_DSP") == "1" else "c"


def check_cmsis_nn_path(gcc: str, target: Target) -> str:
    path = cmsis_nn_path_for(gcc, tuple(target.compile_flags()))
    if path != target.cmsis_nn_path:
        raise BuildFailed(f"simrun/device/targets.py says {target.cpu} uses the CMSIS-NN {target.cmsis_nn_path!r} "
                          f"path, but its flags {' '.join(target.compile_flags())} select {path!r}")
    return path


def cmake_defines(target: Target, fp_contract: str = DEFAULT_FP_CONTRACT) -> dict[str, str]:
    b = target.board
    # GCC's default contraction is left implicit, so default keys and trees stay what they were.
    opt = OPT_FLAGS if fp_contract == DEFAULT_FP_CONTRACT else f"{OPT_FLAGS};-ffp-contract={fp_contract}"
    return {
        "SIMRUN_CPU": target.cpu,
        "SIMRUN_CPU_FLAGS": ";".join(target.compile_flags()),
        "SIMRUN_BOARD": b.name,
        "SIMRUN_FLASH_ORIGIN": hex(b.flash_origin), "SIMRUN_FLASH_SIZE": hex(b.flash_size),
        "SIMRUN_RAM_ORIGIN": hex(b.ram_origin), "SIMRUN_RAM_SIZE": hex(b.ram_size),
        "SIMRUN_BULK_ORIGIN": hex(b.bulk_origin), "SIMRUN_BULK_SIZE": hex(b.bulk_size),
        "SIMRUN_OPT_FLAGS": opt,
    }


def files_digest(root: Path, entries: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for entry in entries:
        p = root / entry
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            if "__pycache__" in f.parts:
                continue
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def key_inputs(target: Target, kernels: str, source_identity: dict, compiler: str,
               firmware_digest: str, rounding: str = DEFAULT_ROUNDING,
               fp_contract: str = DEFAULT_FP_CONTRACT) -> dict:
    """Everything the binary depends on; tree_key uses the part the TFLM objects depend on."""
    inputs = {
        "target": {"cpu": target.cpu, "board": asdict(target.board), "flags": target.compile_flags()},
        "defines": cmake_defines(target, fp_contract),
        "sources": source_identity,
        "compiler": compiler,
        "kernels": kernels,
        "firmware": firmware_digest,
    }
    if rounding != DEFAULT_ROUNDING:
        # Only a non-default mode enters the key, so double-rounding keys stay
        # what they were. Not the tree key: one tree builds both modes, sharing
        # every object the mode cannot change (CMakeLists.txt, source_split.py).
        inputs["rounding"] = rounding
    if fp_contract != DEFAULT_FP_CONTRACT:
        inputs["fp_contract"] = fp_contract     # every object changes: its own tree too
    return inputs


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def cache_key(inputs: dict) -> str:
    return digest(inputs)[:20]


def tree_key(inputs: dict) -> str:
    # The CMake tree depends on neither the variant (kernels, rounding) nor our own
    # sources: CMake tracks those incrementally inside the tree.
    return digest({k: v for k, v in inputs.items() if k not in ("kernels", "firmware", "rounding")})[:12]


@dataclass(frozen=True)
class FirmwareRequest:
    """One firmware variant, resolved: what its cache key hashes and where its entry lives."""
    target: Target
    kernels: str
    rounding: str
    fp_contract: str
    src_root: Path | None
    cache: Path
    inputs: dict

    @property
    def variant(self) -> FirmwareVariant:
        return FirmwareVariant(self.target.cpu, self.kernels, self.rounding, self.fp_contract)

    @property
    def suffix(self) -> str:
        return self.variant.cache_suffix

    @property
    def label(self) -> str:
        return self.variant.label

    @property
    def entry(self) -> Path:
        return self.cache / "firmware" / f"{self.target.cpu}-{self.kernels}{self.suffix}-{cache_key(self.inputs)}"


def plan_firmware(cpu: str, kernels: str, *, rounding: str = DEFAULT_ROUNDING,
                  fp_contract: str = DEFAULT_FP_CONTRACT, sources_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None,
                  source_state: sources.SourceState | None = None) -> FirmwareRequest:
    """Check the variant and the compiler, and compute its key; builds nothing. `source_state`:
    sources.state(sources_dir) computed once for several variants (else here)."""
    try:
        target = get_target(cpu)
        check_variant(kernels)
    except (UnknownTarget, ValueError) as err:
        raise BadInput(str(err)) from None
    FirmwareVariant(cpu, kernels, rounding, fp_contract)    # checks rounding, fp_contract
    state = source_state or sources.state(sources_dir)
    src_root = state.root
    gcc = require_tool("arm-none-eabi-gcc")
    check_cmsis_nn_path(gcc, target)
    cache = errors.require_writable_dir(Path(cache_dir) if cache_dir else default_cache_dir(),
                                        errors.CacheUnwritable, "firmware cache", CACHE_FIX)
    inputs = key_inputs(target, kernels, state.identity, tool_version(gcc),
                        files_digest(resources.root(), FIRMWARE_INPUTS), rounding, fp_contract)
    return FirmwareRequest(target, kernels, rounding, fp_contract, src_root, cache, inputs)


def cached_firmware(request: FirmwareRequest) -> Firmware | None:
    """The finished entry for this request, or None; a hit marks the entry used (cache_store's
    "last used": the directory's mtime, the files inside stay untouched)."""
    found = load_entry(request.entry)
    if found:
        with contextlib.suppress(OSError):
            os.utime(request.entry)
    return found


def ensure_firmware(cpu: str, kernels: str, *, rounding: str = DEFAULT_ROUNDING,
                    fp_contract: str = DEFAULT_FP_CONTRACT, sources_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                    progress: Progress | None = None,
                    source_state: sources.SourceState | None = None) -> Firmware:
    request = plan_firmware(cpu, kernels, rounding=rounding, fp_contract=fp_contract,
                            sources_dir=sources_dir, cache_dir=cache_dir, source_state=source_state)
    return build_firmware(request, progress)


def build_firmware(request: FirmwareRequest, progress: Progress | None = None) -> Firmware:
    """The cached entry, or build it (under the tree's lock) and publish it."""
    say = progress or (lambda _msg: None)
    target, cache, entry = request.target, request.cache, request.entry
    cached = cached_firmware(request)
    if cached:
        say(f"cached: {cached.elf}")
        return cached
    cmake = require_tool("cmake")
    require_tool("arm-none-eabi-g++")
    size_tool = require_tool("arm-none-eabi-size")
    if entry.exists():
        say(f"cache entry {entry} is damaged (ELF missing or truncated): building it again")

    tree_name = request_tree(request)
    (cache / "locks").mkdir(parents=True, exist_ok=True)
    with open(cache / "locks" / f"{tree_name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting: another process is building in {tree_name}...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        cached = cached_firmware(request)  # another process may have built it meanwhile
        if cached:
            say(f"cached: {cached.elf}")
            return cached
        build_dir = cache / "build" / tree_name
        started = time.monotonic()
        launcher = compiler_launcher()
        env = ccache.environment(cache, request.src_root) if launcher else None
        configure(cmake, build_dir, target, request.src_root, cache, say, request.fp_contract, launcher)
        exe = compile_variant(cmake, build_dir, executable_name(request.kernels, request.rounding), say, env,
                              cache, target.cpu)
        metadata = make_metadata(target, request.kernels, request.inputs, request.src_root, size_tool, exe,
                                 time.monotonic() - started, request.rounding, request.fp_contract)
        return publish(entry, exe, metadata)


def request_tree(request: FirmwareRequest) -> str:
    """The name of the CMake tree (under <cache>/build) that builds this request."""
    both_roundings = FirmwareVariant(request.target.cpu, request.kernels, DEFAULT_ROUNDING, request.fp_contract)
    return tree_for(request.cache, f"{request.target.cpu}-{tree_key(request.inputs)}{both_roundings.cache_suffix}")


def cmake_home(tree: Path) -> str | None:
    """The source dir a CMake tree was configured for (CMakeCache.txt), or None."""
    try:
        text = (tree / "CMakeCache.txt").read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", text, re.M)
    return m.group(1).strip() if m else None


def tree_for(cache: Path, prefix: str) -> str:
    """The CMake tree to build in: an existing one configured for our source dir
    (named before tree names carried the source dir id, or copied from another
    cache with its paths rewritten) saves a cold build of minutes; else a new
    name with our source dir's id. CMake trees cannot be renamed, hence the search."""
    ours = str(resources.root())
    build_root = cache / "build"
    if build_root.is_dir():
        for tree in sorted(build_root.iterdir()):
            if ((tree.name == prefix or re.fullmatch(re.escape(prefix) + r"-[0-9a-f]{8}", tree.name))
                    and cmake_home(tree) == ours):
                return tree.name
    return f"{prefix}-{resources.root_id()}"


def compiler_launcher(env: dict | None = None) -> str | None:
    """What wraps each compiler call: SIMRUN_COMPILER_LAUNCHER when set (a command such as
    distcc, or bench/build_time.py's per-file timer), else ccache when present. A
    launcher changes no object, so it is no part of the cache key."""
    env = os.environ if env is None else env
    return env.get(LAUNCHER_SWITCH) or ccache.launcher(env)


def switched_on(switch: str, env: dict | None = None) -> bool:
    """A build speed-up, on unless its switch is 0: SIMRUN_PCH (precompiled headers) or
    SIMRUN_SHARE_ROUNDING (one compile of what the rounding mode cannot change; see
    CMakeLists.txt). Either way the firmware is the same code (bench/build_time.py
    --check-identical --check-layers), so neither is part of the cache key; the
    switches exist for that measurement."""
    env = os.environ if env is None else env
    return env.get(switch, "").strip().lower() not in ("0", "no", "off", "false")


def run_logged(cmd: list[str], say: Progress, env: dict | None = None) -> tuple[int, list[str]]:
    """Run a build step, passing each output line to `say`; returns (code, last lines)."""
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, errors="replace")
    try:
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-60:]
            say(line)
        return proc.wait(), tail
    finally:
        if proc.poll() is None:  # interrupted: do not leave compilers running
            proc.kill()
            proc.wait()


def executable_name(kernels: str, rounding: str = DEFAULT_ROUNDING) -> str:
    """The CMake target of a variant: simrun_<kernels>, simrun_<kernels>-single (CMakeLists.txt)."""
    return f"simrun_{kernels}" + ("" if rounding == DEFAULT_ROUNDING else f"-{rounding}")


def configure_command(cmake: str, build_dir: Path, target: Target, src_root: Path | None, cache: Path,
                      fp_contract: str = DEFAULT_FP_CONTRACT, launcher: str | None = None) -> list[str]:
    """CMake's configure line. `launcher` (ccache.launcher()) wraps the compilers; it
    changes no object, so it is no part of the cache key (key_inputs)."""
    toolchain = resources.path("cmake", "arm-none-eabi.cmake")
    return [cmake, "-S", str(resources.root()), "-B", str(build_dir), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
            "-DCMAKE_BUILD_TYPE=", f"-DFETCHCONTENT_BASE_DIR={cache / 'downloads'}",
            *[f"-D{k}={v}" for k, v in cmake_defines(target, fp_contract).items()],
            f"-DSIMRUN_PCH={'ON' if switched_on(PCH_SWITCH) else 'OFF'}",
            f"-DSIMRUN_SHARE_ROUNDING={'ON' if switched_on(SHARE_SWITCH) else 'OFF'}",
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",     # bench/build_time.py's -ftime-report sample
            *sources.cmake_args(src_root), *ccache.cmake_args(launcher)]


def configure(cmake: str, build_dir: Path, target: Target, src_root: Path | None, cache: Path,
              say: Progress, fp_contract: str = DEFAULT_FP_CONTRACT, launcher: str | None = None) -> None:
    build_dir.mkdir(parents=True, exist_ok=True)
    cmd = configure_command(cmake, build_dir, target, src_root, cache, fp_contract, launcher)
    env = ccache.environment(cache, src_root) if launcher else dict(os.environ)
    if launcher:
        say(f"compiler launcher: {launcher} (ccache's store {env['CCACHE_DIR']}; {ccache.SWITCH}=0 turns ccache off)")
    # git has no timeout of its own: abort a clone that stalls for a minute.
    env.setdefault("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
    env.setdefault("GIT_HTTP_LOW_SPEED_TIME", "60")
    say(f"configuring {build_dir}")
    code, tail = run_logged(cmd, say, env)
    if code != 0:
        text = "\n".join(tail)
        failed = re.findall(r"Build step for (\w+) failed", text)
        if src_root is None and (failed or re.search(r"download|clone|Failed to get", text, re.I)):
            which = ", ".join(sorted(set(failed))) or "the sources"
            raise SourcesMissing(f"could not download {which} (no network?); {sources.HOW_TO_PROVIDE}")
        raise BuildFailed(f"cmake configure failed for {target.cpu}:\n" + "\n".join(tail[-30:]))


def compile_variant(cmake: str, build_dir: Path, name: str, say: Progress, env: dict | None = None,
                    cache: Path | None = None, cpu: str = "") -> Path:
    """Build the variant's target; each compile step's line ends with a status
    ("[12/162 files, about 13 min left]", build_progress) and a long enough build
    leaves its seconds per file in the cache for `simrun doctor`. `name`: executable_name()."""
    tracker = build_progress.BuildProgress(build_progress.objects_to_compile(build_dir, name))

    def step(line: str) -> None:
        say(f"{line} {tracker.status()}" if tracker.feed(line) else line)

    code, tail = run_logged([cmake, "--build", str(build_dir), "--target", name, "-j", str(JOBS)], step, env)
    if code == 0 and cache is not None:
        build_progress.record_figure(cache, tracker, cpu)
    if code != 0:
        errors = [l for l in tail if "error" in l.lower()] or tail
        raise BuildFailed(f"firmware build failed ({build_dir}):\n" + "\n".join(errors[-30:]))
    return build_dir / f"{name}.elf"


def make_metadata(target: Target, kernels: str, inputs: dict, src_root: Path | None, size_tool: str,
                  elf: Path, seconds: float, rounding: str = DEFAULT_ROUNDING,
                  fp_contract: str = DEFAULT_FP_CONTRACT) -> dict:
    return {
        "cpu": target.cpu,
        "kernels": kernels,
        "rounding": rounding,
        "fp_contract": fp_contract,
        "label": FirmwareVariant(target.cpu, kernels, rounding, fp_contract).label,
        "board": target.board.name,
        "qemu_machine": target.qemu_machine,
        # Checked against the compiler's feature macros before building.
        "cmsis_nn_path": target.cmsis_nn_path if kernels == "cmsis-nn" else None,
        "sources": {t.dirname: t.pin for t in sources.TREES},
        "source_identity": inputs["sources"],
        "sources_dir": str(src_root) if src_root else None,
        "cpu_flags": target.compile_flags(),
        "opt_flags": inputs["defines"]["SIMRUN_OPT_FLAGS"].replace(";", " "),
        "compiler": inputs["compiler"],
        "bulk_bytes": target.board.bulk_size,     # simrun_bulk: model + arena + capture log, laid out at run time
        "sections": section_sizes(size_tool, elf),
        "build_seconds": round(seconds, 1),
        "cache_key": cache_key(inputs),
    }
