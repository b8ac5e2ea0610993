"""Build simrun's QEMU instruction-counting plugin (qemu_plugin/insn_count.c).

QEMU's plugin API header (include/qemu/qemu-plugin.h) ships in no Debian
binary package, so it is taken from QEMU's own source at the installed
version (7.2, plugin API version 1), pinned by checksum like the TFLM trees and
never committed:

  1. SIMRUN_QEMU_SOURCE_DIR: a QEMU source tree (e.g. `git checkout v7.2.x` of
     qemu/qemu, or `apt-get source qemu`), or `qemu/` inside SIMRUN_SOURCES_DIR;
  2. otherwise Debian's own QEMU 7.2 source package, fetched with the ordinary
     client (`apt-get source --download-only qemu`; needs source entries in APT's
     sources, which scripts/setup.sh enables): its upstream tarball (the one
     Debian 12's qemu-system-arm is built from; Debian's stable patches up to
     7.2.22 leave the header alone) is checked against its SHA-256, and only the
     header is kept in the cache.

The plugin is compiled with the host C compiler, like the fixture firmware:
cached under SIMRUN_CACHE_DIR by a hash of source, header, compiler and flags.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import shutil
import tempfile
from pathlib import Path

from ..errors import SourcesMissing, ToolMissing, require_tool
from .. import resources
from .build import BuildFailed
from .sources import ENV_VAR as SOURCES_ENV

QEMU_SOURCE_ENV = "SIMRUN_QEMU_SOURCE_DIR"
QEMU_API = "7.2"                       # the QEMU version whose plugin API (version 1) we build against
HEADER_SHA256 = "19f277b037d05a8bcb5069f2f81a465d177208e5903048a915c56627d4c3748e"   # v7.2.0 .. v7.2.22
TARBALL_SHA256 = "91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f"
TARBALL_MEMBER = "qemu-7.2.0/include/qemu/qemu-plugin.h"
TARBALL_NAME = "qemu_7.2+dfsg.orig.tar.xz"   # upstream tarball of every Debian 12 qemu 1:7.2+dfsg-* revision
CFLAGS = ["-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-std=c11", "-D_GNU_SOURCE"]
HOW_TO_PROVIDE = (f"set {QEMU_SOURCE_ENV} to a QEMU {QEMU_API} source tree (it needs include/qemu/qemu-plugin.h), "
                  f"or enable Debian source entries (deb-src; scripts/setup.sh does) so that `apt-get source qemu` works")


def _cache_root(cache_dir: str | Path | None) -> Path:
    base = Path(cache_dir) if cache_dir else Path(os.environ.get("SIMRUN_CACHE_DIR") or Path.home() / ".cache" / "simrun")
    return base / "qemu-plugin"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def qemu_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
    return m.group(1) if m else "unknown"


def _local_header() -> Path | None:
    candidates = []
    if os.environ.get(QEMU_SOURCE_ENV):
        candidates.append(Path(os.environ[QEMU_SOURCE_ENV]).expanduser())
    if os.environ.get(SOURCES_ENV):
        candidates.append(Path(os.environ[SOURCES_ENV]).expanduser() / "qemu")
    for root in candidates:
        header = root / "include" / "qemu" / "qemu-plugin.h"
        if header.is_file():
            digest = _sha256(header.read_bytes())
            if digest != HEADER_SHA256:
                raise SourcesMissing(f"{header} is not QEMU {QEMU_API}'s plugin header (sha256 {digest[:12]}..., "
                                     f"expected {HEADER_SHA256[:12]}...); check out QEMU {QEMU_API} there")
            return header
        if root == candidates[0] and os.environ.get(QEMU_SOURCE_ENV):
            raise SourcesMissing(f"{QEMU_SOURCE_ENV}={root}: no include/qemu/qemu-plugin.h there; {HOW_TO_PROVIDE}")
    return None


def _download_header(dest: Path) -> Path:
    """The header out of Debian's QEMU source package, fetched by apt (by package name)."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise SourcesMissing(f"cannot get QEMU's plugin header for instruction counting: no apt-get; {HOW_TO_PROVIDE}")
    with tempfile.TemporaryDirectory(prefix="simrun-qemu-src-") as tmp:
        proc = subprocess.run([apt, "source", "--download-only", "qemu"], cwd=tmp,
                              capture_output=True, text=True, timeout=600)
        tarball = Path(tmp) / TARBALL_NAME
        if proc.returncode != 0 or not tarball.is_file():
            said = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SourcesMissing(f"cannot get QEMU's plugin header for instruction counting: "
                                 f"`apt-get source --download-only qemu` failed ({said}); {HOW_TO_PROVIDE}")
        data = tarball.read_bytes()
    if _sha256(data) != TARBALL_SHA256:
        raise SourcesMissing(f"Debian's {TARBALL_NAME} has an unexpected checksum (sha256 {_sha256(data)[:12]}..., "
                             f"expected {TARBALL_SHA256[:12]}...); {HOW_TO_PROVIDE}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
        header = tar.extractfile(TARBALL_MEMBER).read()
    if _sha256(header) != HEADER_SHA256:
        raise SourcesMissing(f"{TARBALL_NAME}: {TARBALL_MEMBER} has an unexpected checksum")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = dest.with_suffix(f".{os.getpid()}.tmp")
    tmp_file.write_bytes(header)
    os.replace(tmp_file, dest)
    return dest


def plugin_header(cache_dir: str | Path | None = None) -> Path:
    """QEMU 7.2's qemu-plugin.h: local tree, else cache, else Debian's source package (pinned checksum)."""
    local = _local_header()
    if local is not None:
        return local
    cached = _cache_root(cache_dir) / f"header-{HEADER_SHA256[:16]}" / "qemu-plugin.h"
    if cached.is_file() and _sha256(cached.read_bytes()) == HEADER_SHA256:
        return cached
    return _download_header(cached)


def ensure_plugin(cache_dir: str | Path | None = None, qemu: str | None = None) -> Path:
    """The built insn_count plugin (.so) for the installed QEMU; built once, then cached."""
    qemu = qemu or require_tool("qemu-system-arm", "install QEMU (Debian/Ubuntu: apt-get install qemu-system-arm)")
    version = qemu_version(qemu)
    if not version.startswith(QEMU_API + "."):
        raise ToolMissing(f"instruction counting uses QEMU {QEMU_API}'s plugin API (version 1); "
                          f"{qemu} is version {version}: install QEMU {QEMU_API} or run without counting")
    cc = require_tool("cc", "install a host C compiler (Debian: apt-get install gcc)")
    header = plugin_header(cache_dir)
    plugin_source = resources.path("qemu_plugin", "insn_count.c")
    source = plugin_source.read_bytes()
    cc_version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.split("\n", 1)[0]
    key = _sha256(b"\0".join([source, header.read_bytes(), cc_version.encode(), " ".join(CFLAGS).encode()]))
    out_dir = _cache_root(cache_dir) / key[:16]
    so = out_dir / "insn_count.so"
    if so.is_file():
        return so
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"insn_count.{os.getpid()}.tmp.so"
    cmd = [cc, *CFLAGS, f"-I{header.parent}", str(plugin_source), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildFailed(f"building the instruction-counting plugin failed:\n{' '.join(cmd)}\n{proc.stderr.strip()}")
    os.replace(tmp, so)   # atomic: parallel sessions never load half a library
    return so
