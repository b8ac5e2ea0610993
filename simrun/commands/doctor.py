"""`simrun doctor`: what this machine has and lacks for simrun, each with the command that fixes it.

Exit 0 when everything the emulated targets need is here (Python packages, the
Arm toolchain with newlib, QEMU, CMake, simrun's own firmware files, a writable
cache); 4 (the environment lacks something) otherwise. TFLM sources or network,
Renode and TensorFlow are reported but optional: without sources the host
backends and the fixture firmware still run, Renode is one of two emulators,
TensorFlow only converts models.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import EXIT_ENVIRONMENT, EXIT_OK, CacheUnwritable, SimrunError, require_writable_dir

APT = "apt-get install"
# (distribution, why, required); the fix is `pip install simrun` (its dependencies).
PACKAGES = (("numpy", "arrays", True), ("pyelftools", "reads firmware ELFs", True),
            ("ai-edge-litert", "desktop TFLite backends", True), ("tflite-micro", "host TFLM backend", True),
            ("robotframework", "Robot library", True), ("matplotlib", "HTML report plots", True),
            ("tensorflow", "converts Keras models (simrun[convert])", False))
MIN_CMAKE = (3, 24)         # CMakeLists.txt's cmake_minimum_required
NETWORK_PROBE = ("github.com", 443)


@dataclass
class Check:
    name: str
    status: str             # "ok", "missing" (required), "warn" (optional or degraded)
    detail: str
    fix: str = ""


def _version_line(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"does not run: {err}"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown version"


def check_python() -> list[Check]:
    checks = [Check("python", "ok", f"{sys.version.split()[0]} ({sys.executable})")]
    for dist, why, required in PACKAGES:
        try:
            checks.append(Check(dist, "ok", f"{metadata.version(dist)} ({why})"))
        except metadata.PackageNotFoundError:
            fix = (f"{sys.executable} -m pip install '{dist}'" if required
                   else f"{sys.executable} -m pip install 'simrun[convert]'")
            checks.append(Check(dist, "missing" if required else "warn", f"not installed ({why})", fix))
    return checks


def check_toolchain() -> list[Check]:
    fix = f"{APT} gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
    checks = []
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size"):
        path = shutil.which(tool)
        checks.append(Check(tool, "ok", f"{_version_line(path)} ({path})") if path
                      else Check(tool, "missing", "not on PATH (builds the firmware)", fix))
    gcc, gxx = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
    # -print-file-name echoes the bare name back when the library is not installed.
    for name, compiler, lib, package in (("newlib", gcc, "libc_nano.a", "libnewlib-arm-none-eabi"),
                                         ("libstdc++ (newlib)", gxx, "libstdc++.a",
                                          "libstdc++-arm-none-eabi-newlib")):
        if not compiler:
            checks.append(Check(name, "missing", "no Arm compiler to ask", fix))
            continue
        out = subprocess.run([compiler, "-mcpu=cortex-m4", "-mthumb", f"-print-file-name={lib}"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        checks.append(Check(name, "ok", out) if os.path.isabs(out) and os.path.isfile(out)
                      else Check(name, "missing", f"{lib} not found by {compiler}", f"{APT} {package}"))
    return checks


def check_qemu() -> list[Check]:
    from ..device.targets import TARGETS

    path = shutil.which("qemu-system-arm")
    if not path:
        return [Check("qemu-system-arm", "missing", "not on PATH (the default emulator)",
                      f"{APT} qemu-system-arm")]
    version = _version_line(path)
    try:
        machines = subprocess.run([path, "-machine", "help"], capture_output=True, text=True,
                                  timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        machines = ""
    needed = sorted({t.qemu_machine for t in TARGETS.values()})
    lacking = [m for m in needed if not re.search(rf"^{re.escape(m)}\s", machines, re.M)]
    if lacking:
        return [Check("qemu-system-arm", "missing", f"{version}: lacks the boards {', '.join(lacking)}",
                      f"{APT} qemu-system-arm (QEMU 7.2 or later)")]
    return [Check("qemu-system-arm", "ok", f"{version} ({path}); boards {', '.join(needed)}")]


def check_renode() -> list[Check]:
    """Renode's version, whether simrun may start it (a private network namespace), and per CPU
    what that version runs (MIN_VERSION, UNIMPLEMENTED in device/emulators/renode.py)."""
    from ..device.emulators import renode

    path = shutil.which("renode")
    if not path:
        return [Check("renode", "warn", "not on PATH (optional: --emulator renode)", renode.INSTALL_HINT)]
    version = renode.renode_version(path)     # run with its own temp dir, as every Renode simrun starts
    if version is None:
        return [Check("renode", "warn", f"`{path} --version` printed no version: it does not run here",
                      renode.INSTALL_HINT)]
    shown = ".".join(map(str, version))
    checks = [Check("renode", "ok", f"Renode {shown} ({path})")]
    if renode.network_mode() == "private":
        try:
            renode.unshare_prefix()
        except SimrunError as err:
            checks.append(Check("renode network", "warn", str(err).split(". ")[0],
                                "run as root, allow unprivileged user namespaces, or set "
                                f"{renode.NETWORK_ENV}=host"))
    for cpu, (status, why) in renode.renode_support(version).items():
        if status == "runs":
            continue
        checks.append(Check(f"renode {cpu}", "warn", f"Renode {shown} {'cannot run' if status == 'no' else 'runs'} "
                                                      f"{cpu}{'' if status == 'no' else ' partly'}: {why}",
                            "use QEMU for this CPU (--emulator qemu)"))
    runs = [cpu for cpu, (status, _) in renode.renode_support(version).items() if status == "runs"]
    checks[0].detail += f"; runs {', '.join(runs) or 'none of the CPUs'}"
    return checks


def check_cmake() -> list[Check]:
    path = shutil.which("cmake")
    if not path:
        return [Check("cmake", "missing", "not on PATH (configures the TFLM firmware)", f"{APT} cmake")]
    line = _version_line(path)
    m = re.search(r"(\d+)\.(\d+)", line)
    if m and (int(m[1]), int(m[2])) < MIN_CMAKE:
        return [Check("cmake", "missing", f"{line}: {'.'.join(map(str, MIN_CMAKE))} or later needed",
                      f"{sys.executable} -m pip install cmake")]
    return [Check("cmake", "ok", f"{line} ({path})")]


def _network() -> str | None:
    try:
        socket.create_connection(NETWORK_PROBE, timeout=3).close()
        return None
    except OSError as err:
        return str(err)


def check_sources(sources_dir: str | None) -> list[Check]:
    from ..device import sources

    try:
        root = sources.resolve(sources_dir)
    except SimrunError as err:
        return [Check("TFLM sources", "missing", str(err).split(";")[0], sources.HOW_TO_PROVIDE)]
    if root is not None:
        stale = sources.wrong_pins(root)
        if stale:
            return [Check("TFLM sources", "warn", f"{root}: " + "; ".join(stale),
                          "check out the pinned commits: " + sources.HOW_TO_PROVIDE)]
        return [Check("TFLM sources", "ok", f"{root} (all five trees)")]
    problem = _network()
    if problem is None:
        return [Check("TFLM sources", "ok", f"none given; {NETWORK_PROBE[0]} reachable, CMake downloads "
                                             "the pinned trees on the first build")]
    return [Check("TFLM sources", "warn", f"none given and no network ({problem}): host backends and the "
                                          "fixture firmware run, TFLM firmware cannot be built",
                  sources.HOW_TO_PROVIDE)]


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def check_files_and_cache(cache_dir: str | None) -> list[Check]:
    from .. import resources
    from ..device.build import CACHE_FIX, default_cache_dir

    checks = []
    try:
        checks.append(Check("simrun files", "ok", f"{resources.root()} (CMakeLists.txt, cmake/, firmware/, "
                                                   "renode/)"))
    except SimrunError as err:
        checks.append(Check("simrun files", "missing", str(err), f"{sys.executable} -m pip install "
                                                                  "--force-reinstall simrun"))
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    try:
        require_writable_dir(cache, CacheUnwritable, "firmware cache", CACHE_FIX)
    except CacheUnwritable as err:
        checks.append(Check("cache", "missing", str(err).rsplit(": ", 1)[0], CACHE_FIX))
    else:
        size = _size(cache) if cache.is_dir() else 0
        entries = len(list((cache / "firmware").glob("*"))) if (cache / "firmware").is_dir() else 0
        checks.append(Check("cache", "ok", f"{cache}: {size / 2**20:.1f} MiB, {entries} firmware entries "
                                           f"(`simrun cache` lists them, `simrun cache prune` removes old ones)"))
        checks.append(check_first_build(cache))
    return checks


def check_first_build(cache: Path) -> Check:
    """How long a cold build of one reference firmware takes here (a note, never a failure)."""
    from ..device import build_progress, ccache
    seconds, where = build_progress.first_build_estimate(cache)
    launcher = ccache.launcher()
    how = (f"ccache {launcher} in use (store {cache / 'ccache'})" if launcher
           else "no ccache (install it, e.g. `apt-get install ccache`, to reuse objects across trees)")
    return Check("first build", "ok", f"a cold reference build here takes about "
                                      f"{build_progress.format_seconds(seconds)} "
                                      f"({build_progress.FIRST_BUILD_FILES} files at {where}); {how}")


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check what simrun needs on this machine and how to fix what lacks",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--sources", metavar="DIR", default=None,
                   help="TFLM source directory to check (default: $SIMRUN_SOURCES_DIR)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="firmware cache to check (default: $SIMRUN_CACHE_DIR or ~/.cache/simrun)")
    p.set_defaults(func=run)


def run(args) -> int:
    checks = (check_python() + check_toolchain() + check_qemu() + check_cmake() + check_renode()
              + check_sources(args.sources) + check_files_and_cache(args.cache_dir))
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{c.status.upper():<8} {c.name:<{width}}  {c.detail}")
        if c.fix and c.status != "ok":
            print(f"{'':<8} {'':<{width}}  fix: {c.fix}")
    missing = [c.name for c in checks if c.status == "missing"]
    if missing:
        print(f"simrun doctor: missing {', '.join(missing)}: the emulated targets cannot run here",
              file=sys.stderr)
        return EXIT_ENVIRONMENT
    warned = [c.name for c in checks if c.status == "warn"]
    print("simrun doctor: everything the emulated targets need is here"
          + (f" (optional: {', '.join(warned)})" if warned else ""), file=sys.stderr)
    return EXIT_OK
