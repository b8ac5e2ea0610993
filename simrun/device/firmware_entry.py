"""A finished firmware cache entry: firmware/<name>/{firmware.elf, metadata.json}.

publish() writes one whole (to a temporary name, then one rename), load_entry()
reads one back or says it is damaged, read_metadata() reads the metadata beside
any ELF. build.py decides what an entry is called and when to build it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Firmware:
    elf: Path
    metadata: dict


def read_metadata(elf: str | Path) -> dict:
    """The metadata.json a simrun build writes beside its ELF; {} for an ELF built
    elsewhere (e.g. the fixture) or a file that cannot be read."""
    path = Path(elf).parent / "metadata.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def firmware_versions(metadata: dict) -> dict[str, str]:
    """The build facts that decide what runs (compiler, flags, source pins), as Capture.versions keys."""
    versions = {f"firmware.{key}": str(metadata[key])
                for key in ("kernels", "rounding", "fp_contract", "compiler", "opt_flags", "cmsis_nn_path", "cache_key")
                if metadata.get(key) is not None}
    for tree, pin in (metadata.get("sources") or {}).items():
        versions[f"source.{tree}"] = str(pin)
    return versions


def load_entry(entry: Path) -> Firmware | None:
    """The cached firmware, or None when the entry is absent or damaged (ELF deleted,
    truncated or not an ELF, metadata unreadable): then the caller builds it again."""
    elf, meta = entry / "firmware.elf", entry / "metadata.json"
    try:
        metadata = json.loads(meta.read_text())
        with open(elf, "rb") as f:
            magic = f.read(4)
        size = elf.stat().st_size
    except (OSError, ValueError):
        return None
    if magic != b"\x7fELF" or metadata.get("elf_bytes", size) != size:
        return None
    return Firmware(elf, metadata)


def section_sizes(size_tool: str, elf: Path) -> dict[str, int]:
    out = subprocess.run([size_tool, "-A", "-d", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


def publish(entry: Path, elf: Path, metadata: dict) -> Firmware:
    tmp = entry.with_name(entry.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(elf, tmp / "firmware.elf")
    metadata = {**metadata, "elf_bytes": (tmp / "firmware.elf").stat().st_size}  # load_entry's check
    (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(entry, ignore_errors=True)
    os.replace(tmp, entry)  # readers see a whole entry or none
    return Firmware(entry / "firmware.elf", metadata)
