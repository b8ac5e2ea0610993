"""firmware/src/source_split.py: which files both rounding modes share, which skip the PCH.

The rounding rule must never share a file whose object the mode can change: each case below
is one way a file can depend on a region that tests the macro."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "firmware" / "src" / "source_split.py"
spec = importlib.util.spec_from_file_location("source_split", SCRIPT)
source_split = importlib.util.module_from_spec(spec)
sys.modules["source_split"] = source_split         # its dataclasses look their module up
spec.loader.exec_module(source_split)

HEADER = """#pragma once
#include "other.h"
namespace tfl {
#if MODE
inline int Helper(int x) { return x >> 1; }
#else
inline int Helper(int x) { return x / 2; }
#endif  // MODE
constexpr int kUnrelated = 3;
inline int Rounded(int x) {
  int y = x * 3;
#ifdef MODE
  y += 1;
#endif
  return y;
}
}  // namespace tfl
"""
OTHER = "#pragma once\nnamespace tfl { inline int Plain(int x) { return x + 1; } }\n"
TUS = {
    "calls_helper.cc": '#include "rounding.h"\nint f(int x) { return tfl::Helper(x); }\n',
    "calls_rounded.cc": '#include "rounding.h"\nint f(int x) { return tfl::Rounded(x); }\n',
    "unrelated.cc": '#include "rounding.h"\nint f(int x) { return tfl::Plain(x) + tfl::kUnrelated; }\n',
    "names_it_in_a_comment.cc": '#include "rounding.h"\n// not tfl::Helper(x), and "Rounded(" in a string\n'
                                'const char* s = "Rounded(";\nint f(int x) { return tfl::Plain(x); }\n',
    "own_region.cc": "int f(int x) {\n#if MODE\n  return x;\n#else\n  return -x;\n#endif\n}\n",
    "through_a_wrapper.cc": '#include "wrapper.h"\nint f(int x) { return Wrap(x); }\n',
    "reaches_unnamed.cc": '#include "unnamed.h"\nint f(int x) { return x; }\n',
    "no_header.cc": "int f(int x) { return x; }\n",
}


def _tree(tmp_path: Path) -> Path:
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "rounding.h").write_text(HEADER)
    (inc / "other.h").write_text(OTHER)
    # A header outside any region that uses a region's function makes its users depend.
    (inc / "wrapper.h").write_text('#include "rounding.h"\ninline int Wrap(int x) { return tfl::Helper(x); }\n')
    # A region that defines nothing a name can follow (a bare statement at file scope).
    (inc / "unnamed.h").write_text("#if MODE\nstatic_assert(sizeof(int) == 4, \"x\");\n#endif\n")
    for name, text in TUS.items():
        (tmp_path / name).write_text(text)
    return inc


def _split(tmp_path: Path, mode: str, what: str) -> set[str]:
    inc = _tree(tmp_path) if not (tmp_path / "include").exists() else tmp_path / "include"
    listing = tmp_path / "list.txt"
    listing.write_text(";".join(str(tmp_path / n) for n in TUS))
    out = tmp_path / "out.txt"
    subprocess.run([sys.executable, str(SCRIPT), mode, str(listing), str(out), what, str(inc)], check=True)
    return {Path(line).name for line in out.read_text().splitlines() if line}


def test_shared_files_are_those_that_cannot_reach_what_the_mode_changes(tmp_path):
    shared = _split(tmp_path, "rounding", "MODE")
    assert shared == {"unrelated.cc", "names_it_in_a_comment.cc", "no_header.cc"}
    # Named elsewhere: the function defined in a region, the function a region sits in, a
    # header function that calls one, a region in the file itself, a region with no name.
    for depends in ("calls_helper.cc", "calls_rounded.cc", "through_a_wrapper.cc", "own_region.cc",
                    "reaches_unnamed.cc"):
        assert depends not in shared


def test_region_names_are_the_functions_it_defines_or_sits_in(tmp_path):
    _tree(tmp_path)
    s = source_split.scan(tmp_path / "include" / "rounding.h", ("MODE",))
    assert len(s.regions) == 2
    assert s.names == {"Helper", "Rounded"} and not s.unknown
    assert source_split.scan(tmp_path / "include" / "unnamed.h", ("MODE",)).unknown


def test_pch_split_lists_the_files_that_never_reach_the_header(tmp_path):
    skipped = _split(tmp_path, "pch", "other.h")
    assert skipped == {"own_region.cc", "no_header.cc", "reaches_unnamed.cc"}


def test_comments_and_literals_are_blanked_in_place():
    text = 'int a; // x(\n/* y(\n */ s = "z(" ; c = \'(\';'
    out = source_split.strip_comments(text)
    assert len(out) == len(text) and out.count("\n") == text.count("\n")
    assert "x(" not in out and "y(" not in out and "z(" not in out and "'('" not in out
    assert out.startswith("int a;")


def test_a_bad_mode_is_one_message_and_exit_2(tmp_path):
    listing = tmp_path / "l.txt"
    listing.write_text("")
    res = subprocess.run([sys.executable, str(SCRIPT), "nonsense", str(listing), str(tmp_path / "o"), "X"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "mode must be pch or rounding" in res.stderr
