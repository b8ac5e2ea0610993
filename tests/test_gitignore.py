"""A fork with a common .gitignore template still tracks all of simrun.

GitHub's Python.gitignore (and its Rust, Maven and Scala/sbt templates) ignore
`target/`: with `simrun/target/` as the device layer's folder, a contributor's
fork made with that template tracked none of its files after `git add -A`
(issue 17; the folder is now `simrun/device/`). This test repeats that in a
temporary repository: a copy of the package and of the resources it ships,
each template as the only .gitignore, `git add -A`, and every file tracked.

The templates' pattern lines are copied below (comments left out), from
github.com/github/gitignore as published in 2025; no network is used.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

# Python.gitignore
PYTHON = """
__pycache__/
*.py[codz]
*$py.class
*.so
.Python
build/
develop-eggs/
dist/
downloads/
eggs/
.eggs/
lib/
lib64/
parts/
sdist/
var/
wheels/
share/python-wheels/
*.egg-info/
.installed.cfg
*.egg
MANIFEST
*.manifest
*.spec
pip-log.txt
pip-delete-this-directory.txt
htmlcov/
.tox/
.nox/
.coverage
.coverage.*
.cache
nosetests.xml
coverage.xml
*.cover
*.py.cover
.hypothesis/
.pytest_cache/
cover/
*.mo
*.pot
*.log
local_settings.py
db.sqlite3
db.sqlite3-journal
instance/
.webassets-cache
.scrapy
docs/_build/
.pybuilder/
target/
.ipynb_checkpoints
profile_default/
ipython_config.py
.pdm-python
.pdm-build/
.pixi
__pypackages__/
celerybeat-schedule
celerybeat.pid
*.sage.py
.env
.envrc
.venv
env/
venv/
ENV/
env.bak/
venv.bak/
.spyderproject
.spyproject
.ropeproject
/site
.mypy_cache/
.dmypy.json
dmypy.json
.pyre/
.pytype/
cython_debug/
.abstra/
.ruff_cache/
.pypirc
.cursorignore
.cursorindexingignore
marimo/_static/
marimo/_lsp/
__marimo__/
.streamlit/secrets.toml
"""

# Rust.gitignore
RUST = """
debug
target
**/*.rs.bk
*.pdb
**/mutants.out*/
rustc-ice-*.txt
"""

# Maven.gitignore
MAVEN = """
target/
pom.xml.tag
pom.xml.releaseBackup
pom.xml.versionsBackup
pom.xml.next
release.properties
dependency-reduced-pom.xml
buildNumber.properties
.mvn/timing.properties
.mvn/wrapper/maven-wrapper.jar
.project
.classpath
"""

# Scala.gitignore (with its sbt lines)
SCALA = """
*.class
*.log
.cache
.history
.lib/
dist/*
target/
lib_managed/
src_managed/
project/boot/
project/plugins/project/
.scala_dependencies
.worksheet
*.idea
*.iml
"""

# What a fork needs to install and build simrun: the package and the files
# simrun.resources ships beside it (CMake, firmware, Renode scripts, the QEMU plugin).
SHIPPED = ("simrun", "CMakeLists.txt", "cmake", "firmware", "renode", "qemu_plugin")


def _git(cwd: Path, *args: str) -> str:
    # No user or system configuration: a global excludes file would change what is ignored.
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def shipped_files() -> list[str]:
    if not shutil.which("git"):
        pytest.skip("git not on PATH")
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout (an sdist or a copy): nothing to compare with")
    files = _git(REPO, "ls-files", "-z", "--", *SHIPPED).split("\0")
    files = [f for f in files if f and (REPO / f).is_file()]   # a deletion not yet committed
    assert any(f.startswith("simrun/device/") for f in files), files[:20]
    return files


@pytest.mark.parametrize("template", [PYTHON, RUST, MAVEN, SCALA], ids=["Python", "Rust", "Maven", "Scala"])
def test_a_fork_with_a_common_gitignore_tracks_every_file(template, shipped_files, tmp_path):
    fork = tmp_path / "fork"
    for name in shipped_files:
        (fork / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, fork / name)
    (fork / ".gitignore").write_text(template.lstrip())
    _git(fork, "init", "-q")
    _git(fork, "add", "-A")
    tracked = set(_git(fork, "ls-files", "-z").split("\0")) - {"", ".gitignore"}
    lost = sorted(set(shipped_files) - tracked)
    assert not lost, f"{len(lost)} of {len(shipped_files)} files ignored by the template: {lost[:20]}"


def test_the_template_hides_what_it_should(tmp_path):
    """The copied Python template is live: it ignores a `target/` folder and bytecode."""
    if not shutil.which("git"):
        pytest.skip("git not on PATH")
    (tmp_path / "pkg" / "target").mkdir(parents=True)
    (tmp_path / "pkg" / "target" / "a.py").write_text("")
    (tmp_path / "pkg" / "b.pyc").write_bytes(b"")
    (tmp_path / "pkg" / "c.py").write_text("")
    (tmp_path / ".gitignore").write_text(PYTHON.lstrip())
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    assert set(_git(tmp_path, "ls-files").split()) == {".gitignore", "pkg/c.py"}
