"""A report folder that never mixes two runs: written beside the target, moved into place at the end.

    folder = ReportFolder(Path("R"))     # checks R can be replaced; makes R's parent/.R.simrun-tmp-*
    ... write files into folder.path ...
    folder.commit()                      # R now holds exactly these files (the old R is removed)

A CI step that uploads R/ after every run must never show an older run's pass: the old
folder is replaced as a whole (rename it aside, rename the new one in, delete the old one),
so R/ is at every moment either the old run's complete folder or the new run's. Runs into
different folders share nothing (each has its own temporary folder). simrun owns the folder:
an existing R/ is replaced only when it is empty or a simrun report (its summary.json says
so); any other directory is refused rather than deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import BadInput


class ReportFolder:
    def __init__(self, target, what: str = "--report directory"):
        self.target = Path(target).expanduser().absolute()
        self.what = what
        self._check_replaceable()
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.simrun-tmp-", dir=parent))
            # mkdtemp makes it 0700; a report folder gets the mode `mkdir` would give it.
            os.chmod(self.path, 0o777 & ~_umask())
        except OSError as err:
            raise BadInput(f"{what} {target} is not writable ({err.strerror or err}): give --report "
                           f"a directory you can write") from None
        self.done = False

    def _check_replaceable(self) -> None:
        t = self.target
        if t.is_symlink() or (t.exists() and not t.is_dir()):
            raise BadInput(f"{self.what} {t} exists and is not a directory: give --report a new "
                           f"directory or an earlier report folder")
        if t.is_dir() and any(t.iterdir()) and not is_report_folder(t):
            raise BadInput(f"{self.what} {t} holds files that are not a simrun report (no simrun "
                           f"summary.json): simrun replaces the whole folder at the end of a run, so "
                           f"give --report a new or empty directory, or an earlier report folder")

    def commit(self) -> Path:
        """Move the new folder into place; returns the target."""
        if self.done:
            return self.target
        old = None
        if self.target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.simrun-old-", dir=self.target.parent))
            os.rename(self.target, old / "report")
        try:
            os.rename(self.path, self.target)
        except OSError:
            if old is not None:            # put the old folder back rather than leave none
                os.rename(old / "report", self.target)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.done = True
        return self.target

    def discard(self) -> None:
        if not self.done:
            shutil.rmtree(self.path, ignore_errors=True)
            self.done = True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_report_folder(path: Path) -> bool:
    """A folder an earlier simrun run wrote: its summary.json is a simrun summary."""
    try:
        doc = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and ("schema_version" in doc or "schema" in doc)
