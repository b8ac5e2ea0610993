"""Where the files a run needs besides Python live: CMakeLists.txt, cmake/, firmware/, renode/,
qemu_plugin/ (the instruction-counting plugin's source).

In the repository they stay at the top level (CMake users build from there);
a wheel carries copies under simrun/_resources/ (setup.py's build_py puts them
there). Every part of simrun asks `root()` instead of counting parent
directories, so an editable install, a wheel in a fresh virtual environment and
any working directory find the same files.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources as _importlib_resources
from pathlib import Path

from .errors import SimrunError

# What root() must hold; setup.py copies exactly these into the wheel.
ENTRIES = ("CMakeLists.txt", "cmake", "firmware", "renode", "qemu_plugin")
PACKAGED = "_resources"


class ResourcesMissing(SimrunError):
    """The installed package lacks its firmware/CMake files (a broken install)."""


def _complete(path: Path) -> bool:
    return all((path / e).exists() for e in ENTRIES)


@lru_cache(maxsize=None)
def root() -> Path:
    """The directory holding CMakeLists.txt, cmake/, firmware/ and renode/."""
    package = Path(str(_importlib_resources.files("simrun")))
    candidates = (package / PACKAGED,      # a wheel / non-editable install
                  package.parent)          # a checkout (editable install or PYTHONPATH)
    for candidate in candidates:
        if _complete(candidate):
            return candidate.resolve()
    raise ResourcesMissing(
        f"simrun's firmware files ({', '.join(ENTRIES)}) are neither in {candidates[0]} nor in "
        f"{candidates[1]}: reinstall simrun from a wheel or the repository (`pip install .`)")


def path(*parts: str) -> Path:
    """root() / parts, e.g. path("firmware", "fixture")."""
    return root().joinpath(*parts)


def root_id() -> str:
    """A short name for where root() is: a CMake build tree is tied to its
    source directory, so two checkouts (or a checkout and a wheel) sharing one
    cache must not share a tree."""
    return hashlib.sha256(str(root()).encode()).hexdigest()[:8]
