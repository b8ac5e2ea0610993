"""ccache for firmware builds, used when it is on PATH (opt-out: SIMRUN_CCACHE=0).

The compiler launcher goes on CMake's configure line, and its store lives under
the simrun cache dir (<cache>/ccache), so a CI job that caches the simrun cache
keeps the compiler cache with it. CCACHE_BASEDIR is the sources root: ccache
then hashes paths under it relative, and two checkouts (or two runners with the
sources at different paths) share hits. None of this enters the firmware cache
key: ccache returns the object the same compiler would produce from the same
preprocessed input and flags.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

SWITCH = "SIMRUN_CCACHE"


def launcher(env: dict | None = None) -> str | None:
    """The ccache executable to launch compilers through, or None (absent, or switched off)."""
    env = os.environ if env is None else env
    if env.get(SWITCH, "").strip().lower() in ("0", "no", "off", "false"):
        return None
    return shutil.which("ccache", path=env.get("PATH"))


def cmake_args(ccache: str | None) -> list[str]:
    if ccache is None:
        return []
    return [f"-DCMAKE_C_COMPILER_LAUNCHER={ccache}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccache}"]


def environment(cache: Path, src_root: Path | None, env: dict | None = None) -> dict[str, str]:
    """The build steps' environment: `env` (default os.environ) with ccache's store under
    the simrun cache. CMake bakes the launcher into the tree, so this is needed at every
    build, not only at configure. A CCACHE_DIR or CCACHE_BASEDIR the user set is kept.
    CCACHE_NOHASHDIR: the firmware compiles with -g, and ccache would otherwise hash the
    build dir, which differs per checkout (the tree name carries its id); only the
    debug info's comp_dir then names the first builder's dir."""
    out = dict(os.environ if env is None else env)
    out.setdefault("CCACHE_DIR", str(cache / "ccache"))
    # Downloaded sources live under the cache (FETCHCONTENT_BASE_DIR).
    out.setdefault("CCACHE_BASEDIR", str(src_root if src_root is not None else cache))
    out.setdefault("CCACHE_NOHASHDIR", "1")
    return out
