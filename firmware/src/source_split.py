"""Split the TFLM/CMSIS-NN sources for the build (CMakeLists.txt), by reading their text.

    python source_split.py pch LIST OUT HEADER INCLUDE_DIR...
        OUT: the files whose #includes never reach HEADER. They skip the precompiled
        header: loading it costs GCC about 2 s a file (it is ~250 MB, most of it
        flatbuffers' schema_generated.h and libstdc++), more than such a file takes.
    python source_split.py rounding LIST OUT MACRO[,MACRO...] INCLUDE_DIR...
        OUT: the files whose object cannot depend on the MACROs (the rounding switches
        TFLITE_SINGLE_ROUNDING, CMSIS_NN_USE_SINGLE_ROUNDING). One compile of each serves
        both rounding modes; the rest compile once per mode.

LIST holds the sources, `;`-separated (CMake's list); OUT gets one file per line.
Includes are followed textually through the include dirs: an #include under an #if
counts as included, which errs towards "may depend" (compile it twice) and towards
"uses the header" (a cost, never a different object).

Why a file cannot depend on the rounding macros: the macros are tested only in
`#if` regions of a few files (common.h's inline requantization helpers,
resize_bilinear.h, CMSIS-NN's arm_nn_requantize, ...). An object changes only if
the file uses what such a region defines or sits in: the functions defined in a
region at namespace scope, or the function a region sits inside. A function is
used only through its name, so a file whose own text and every header it reaches
never name one of them (outside the regions and the function's own definition)
compiles to the same object in both modes. A region whose names cannot be told
(a macro, a variable, a region at file scope with no function in it) makes every
file that reaches it depend on the mode, as does a region in the file itself.
At the pinned TFLM and CMSIS-NN, bench/build_time.py --check-identical's
comparison of both modes' objects checks this rule against the compiler.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
CONDITIONAL = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
IDENT = re.compile(r"[A-Za-z_]\w*")
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "template", "static_cast", "reinterpret_cast",
            "const_cast", "dynamic_cast", "decltype", "alignof", "noexcept", "operator", "defined", "typename",
            "static_assert", "catch", "do", "else", "new", "delete", "throw", "case"}


_COMMENT_OR_LITERAL = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


def _blank(m: re.Match) -> str:
    text = m.group(0)
    if text[0] in "\"'":                   # a literal keeps its quotes, so code stays code
        return text[0] + " " * (len(text) - 2) + text[-1]
    return re.sub(r"[^\n]", " ", text)


def strip_comments(text: str) -> str:
    """Comments and string/char literals blanked (newlines kept, so offsets and lines hold)."""
    return _COMMENT_OR_LITERAL.sub(_blank, text)


@dataclass
class Scanned:
    text: str                                       # comments and literals blanked
    includes: list[str]
    regions: list[tuple[int, int]] = field(default_factory=list)    # offsets of #if..#endif testing a macro
    names: set[str] = field(default_factory=set)                    # what the regions define or sit in
    unknown: bool = False                            # a region whose names cannot be told
    definitions: set[int] = field(default_factory=set)              # offsets of those functions' own names


def _code_mask(text: str) -> list[bool]:
    """True for characters of C/C++ code, False on preprocessor lines (with continuations)."""
    mask, in_pp = [True] * len(text), False
    pos = 0
    for line in text.splitlines(keepends=True):
        starts = in_pp or line.lstrip().startswith("#")
        if starts:
            for k in range(pos, pos + len(line)):
                mask[k] = False
        in_pp = starts and line.rstrip("\n").endswith("\\")
        pos += len(line)
    return mask


def _blocks(text: str, mask: list[bool]):
    """Every {...} block as (open, close, kind, name, name_offset); kind: namespace, class, function, other."""
    stack, out, last_end = [], [], 0
    for i, c in enumerate(text):
        if not mask[i] or c not in "{};":
            continue
        if c == ";":
            last_end = i + 1
            continue
        if c == "{":
            head = text[last_end:i]
            head_code = "".join(ch for k, ch in enumerate(head, last_end) if mask[k])
            kind, name, where = "other", None, None
            if re.search(r"\bnamespace\b[\w:\s]*$", head_code) or re.search(r"\bextern\s*\"?\s*\"?\s*$", head_code):
                kind = "namespace"
            elif re.search(r"\b(struct|class|union|enum)\b[^()]*$", head_code):
                kind = "class"
            elif ")" in head_code and "=" not in head_code.rsplit(")", 1)[1]:
                close = last_end + head.rfind(")")
                depth, j = 0, close
                while j >= last_end:
                    if text[j] == ")":
                        depth += 1
                    elif text[j] == "(":
                        depth -= 1
                        if depth == 0:
                            break
                    j -= 1
                before = text[last_end:j]
                m = re.search(r"([A-Za-z_]\w*)\s*(<[^(){};]*>)?\s*$", before)
                if m and m.group(1) not in KEYWORDS:
                    kind, name, where = "function", m.group(1), last_end + m.start(1)
            stack.append((i, kind, name, where))
            last_end = i + 1
        else:
            if stack:
                start, kind, name, where = stack.pop()
                out.append((start, i, kind, name, where))
            last_end = i + 1
    return out


def scan(path: Path, macros: tuple[str, ...]) -> Scanned:
    raw = path.read_text(errors="replace")
    text = strip_comments(raw)
    s = Scanned(text, INCLUDE.findall(raw))      # literals are blanked in text: the names come from raw
    if not any(m in text for m in macros):
        return s
    # Conditional regions (#if..#endif, all branches) whose conditions test a macro.
    offsets, pos = [], 0
    for line in text.splitlines(keepends=True):
        offsets.append(pos)
        pos += len(line)
    lines = text.splitlines()
    stack: list[tuple[int, bool]] = []
    for no, line in enumerate(lines):
        m = CONDITIONAL.match(line)
        if not m:
            continue
        word, rest = m.groups()
        if word in ("if", "ifdef", "ifndef"):
            stack.append((offsets[no], any(re.search(rf"\b{x}\b", rest) for x in macros)))
        elif word == "elif" and stack and any(re.search(rf"\b{x}\b", rest) for x in macros):
            stack[-1] = (stack[-1][0], True)
        elif word == "endif" and stack:
            start, tests = stack.pop()
            if tests:
                s.regions.append((start, offsets[no] + len(line)))
    if not s.regions:
        return s
    mask = _code_mask(text)
    blocks = _blocks(text, mask)
    for start, end in s.regions:
        inside = [b for b in blocks if b[0] < start and b[1] > start and b[2] == "function"]
        if inside:
            outer = min(inside, key=lambda b: b[0])          # the function the region sits in
            s.names.add(outer[3])
            s.definitions.add(outer[4])
            continue
        own = [b for b in blocks if start <= b[0] < end]
        before = len(s.names)
        for b in own:                                        # functions (and types) defined in the region
            if b[2] == "function":
                s.names.add(b[3])
                s.definitions.add(b[4])
        for m in re.finditer(r"^\s*#\s*define\s+([A-Za-z_]\w*)", text[start:end], re.M):
            s.names.add(m.group(1))
        # What the region declares outside those bodies: variables and types, by name.
        chars = [ch if mask[k] else " " for k, ch in enumerate(text[start:end], start)]
        for b in own:
            for k in range(max(b[0], start) + 1, min(b[1], end)):
                chars[k - start] = " "
        rest = "".join(chars)
        for m in re.finditer(r"\b(?:struct|class|union|enum)\s+([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)?(?:=|;)",
                             rest):
            name = m.group(1) or m.group(2)
            if name not in KEYWORDS:
                s.names.add(name)
        if len(s.names) == before:
            s.unknown = True                                 # nothing to follow by name
    return s


class Tree:
    """The sources and the headers they reach, each read once."""

    def __init__(self, include_dirs: list[str], macros: tuple[str, ...] = ()):
        self.dirs = [Path(d) for d in include_dirs]
        self.macros = macros
        self._scanned: dict[Path, Scanned] = {}
        self._closure: dict[Path, set[Path]] = {}
        self._resolved: dict[tuple[str, Path], Path | None] = {}

    def scanned(self, path: Path) -> Scanned:
        if path not in self._scanned:
            try:
                self._scanned[path] = scan(path, self.macros)
            except OSError:
                self._scanned[path] = Scanned("", [])
        return self._scanned[path]

    def resolve(self, name: str, here: Path) -> Path | None:
        key = (name, here)
        if key not in self._resolved:
            self._resolved[key] = next(((base / name).resolve() for base in (here, *self.dirs)
                                        if (base / name).is_file()), None)
        return self._resolved[key]

    def closure(self, path: Path) -> set[Path]:
        """The file and every file its includes reach (iteratively: headers include each other)."""
        if path in self._closure:
            return self._closure[path]
        seen, todo = {path}, [path]
        while todo:
            p = todo.pop()
            for name in self.scanned(p).includes:
                found = self.resolve(name, p.parent)
                if found and found not in seen:
                    seen.add(found)
                    todo.append(found)
        self._closure[path] = seen
        return seen

    def reaches(self, path: Path, header: str) -> bool:
        return any(str(p).endswith("/" + header) for p in self.closure(path))

    def depending_on_macros(self, paths: list[Path]) -> set[Path]:
        """Which of `paths` may compile differently with the macros defined (see the module doc)."""
        closures = {p: self.closure(p) for p in paths}
        every = set().union(*closures.values()) if closures else set()
        names = set().union(*(self.scanned(f).names for f in every))
        pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b") if names else None
        mentions: dict[Path, set[str]] = {}

        def mentioned(f: Path) -> set[str]:         # the names f uses, outside regions and definitions
            if f not in mentions:
                s = self.scanned(f)
                mentions[f] = {m.group(1) for m in pattern.finditer(s.text)
                               if m.start() not in s.definitions
                               and not any(a <= m.start() < b for a, b in s.regions)} if pattern else set()
            return mentions[f]

        out = set()
        for p, files in closures.items():
            scanned = [self.scanned(f) for f in files]
            if self.scanned(p).regions or any(s.unknown for s in scanned):
                out.add(p)
                continue
            reached = set().union(*(s.names for s in scanned))
            if reached and any(mentioned(f) & reached for f in files):
                out.add(p)
        return out


def main(mode: str, list_file: str, out_file: str, what: str, *include_dirs: str) -> int:
    files = [f for f in Path(list_file).read_text().split(";") if f.strip()]
    if mode == "pch":
        tree = Tree(list(include_dirs))
        picked = [f for f in files if not tree.reaches(Path(f).resolve(), what)]
    elif mode == "rounding":
        tree = Tree(list(include_dirs), tuple(m for m in what.split(",") if m))
        depending = tree.depending_on_macros([Path(f).resolve() for f in files])
        picked = [f for f in files if Path(f).resolve() not in depending]
    else:
        print(f"source_split.py: mode must be pch or rounding, not {mode!r}", file=sys.stderr)
        return 2
    Path(out_file).write_text("".join(f"{f}\n" for f in picked))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
