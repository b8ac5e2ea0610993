"""Copies the firmware files (CMakeLists.txt, cmake/, firmware/, renode/) into
the wheel as simrun/_resources/, where simrun.resources finds them; in the
repository they stay at the top level. Everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Kept in step with simrun.resources.ENTRIES (tests/test_package.py checks the wheel).
ENTRIES = ("CMakeLists.txt", "cmake", "firmware", "renode", "qemu_plugin")


class BuildPyWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        dest = Path(self.build_lib) / "simrun" / "_resources"
        shutil.rmtree(dest, ignore_errors=True)
        for entry in ENTRIES:
            src = HERE / entry
            if not src.exists():
                raise SystemExit(f"setup.py: {src} is missing; build the wheel from a full checkout or sdist")
            if src.is_dir():
                shutil.copytree(src, dest / entry, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / entry)


setup(cmdclass={"build_py": BuildPyWithResources})
