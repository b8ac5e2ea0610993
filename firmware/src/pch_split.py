"""Which C++ files the precompiled header would slow down (CMakeLists.txt, SIMRUN_PCH).

    python pch_split.py LIST_FILE OUT_FILE HEADER INCLUDE_DIR...

Loading the precompiled header costs GCC about 2 s a file (it is ~250 MB, most
of it flatbuffers' schema_generated.h and libstdc++); a file that never includes
HEADER compiles in well under that without it. This follows each file's
`#include` lines through the include dirs (textually: an include under an
#if counts as included, which errs towards using the header) and writes to
OUT_FILE, one per line, the files whose includes never reach HEADER. Either
choice gives the same object; only the build time differs.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def main(list_file: str, out_file: str, header: str, *include_dirs: str) -> int:
    dirs = [Path(d) for d in include_dirs]

    def resolve(name: str, here: Path) -> Path | None:
        for base in (here, *dirs):
            p = base / name
            if p.is_file():
                return p.resolve()
        return None

    memo: dict[Path, bool] = {}

    def reaches(path: Path) -> bool:
        if path in memo:
            return memo[path]
        memo[path] = False          # include cycles: a header being followed counts as not reaching
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return False
        found = any(name.endswith(header) or ((p := resolve(name, path.parent)) is not None and reaches(p))
                    for name in INCLUDE.findall(text))
        memo[path] = found
        return found

    files = [l for l in Path(list_file).read_text().split(";") if l.strip()]
    light = [f for f in files if not reaches(Path(f).resolve())]
    Path(out_file).write_text("".join(f"{f}\n" for f in light))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
