"""What the host needs from a firmware ELF: symbols, entry point, segments.

Read once with pyelftools. `FirmwareImage.check_abi()` makes sure every symbol
of firmware/include/simrun_abi.h is there with a plausible size; the ABI
version itself is read from simrun_status at run time (the firmware writes it
at boot), so no initial values are read here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AbiMismatch, BadInput

# Struct sizes from simrun_abi.h (mirrored in abi.py); they pin the layout the session decodes.
from .abi import FAULT, LAYOUT, LOG_STATE, MAX_IO, MAX_OP_OUTPUTS, OP_EVENT_BYTES, STATUS, TENSOR  # noqa: F401 (re-exported)

TENSOR_BYTES = TENSOR.size
STATUS_BYTES = STATUS.size
FAULT_BYTES = FAULT.size

REQUIRED = {
    # name: minimum size in bytes (0: any, e.g. functions)
    "simrun_bulk": 1, "simrun_layout": LAYOUT.size, "simrun_command": 4, "simrun_capture": 4,
    "simrun_status": STATUS_BYTES, "simrun_inputs": MAX_IO * TENSOR_BYTES,
    "simrun_outputs": MAX_IO * TENSOR_BYTES, "simrun_op_event": OP_EVENT_BYTES,
    "simrun_fault": FAULT_BYTES, "simrun_log_state": LOG_STATE.size,
    "simrun_hook_ready": 0, "simrun_hook_op_begin": 0, "simrun_hook_op_end": 0,
    "simrun_hook_done": 0, "simrun_hook_fault": 0, "simrun_hook_drain": 0,
}


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int          # thumb bit cleared for functions
    size: int
    kind: str             # "STT_OBJECT", "STT_FUNC", ...


@dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


class FirmwareImage:
    def __init__(self, path: str | Path):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                elf = ELFFile(f)
                if elf["e_machine"] != "EM_ARM":
                    raise BadInput(f"{self.path}: not an ARM ELF (machine {elf['e_machine']})")
                self.entry = elf["e_entry"] & ~1
                self.segments = [Segment(s["p_vaddr"], s["p_paddr"], s["p_filesz"], s["p_memsz"])
                                 for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
                self.sections = {s.name: (s["sh_flags"], s["sh_size"], s["sh_type"]) for s in elf.iter_sections()
                                 if s["sh_flags"] & 0x2}          # SHF_ALLOC: in target memory
                symtab = elf.get_section_by_name(".symtab")
                if symtab is None:
                    raise BadInput(f"{self.path}: ELF has no symbol table (stripped?)")
                self.symbols: dict[str, Symbol] = {}
                for sym in symtab.iter_symbols():
                    kind = sym["st_info"]["type"]
                    if not sym.name or kind not in ("STT_OBJECT", "STT_FUNC"):
                        continue
                    addr = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
                    self.symbols[sym.name] = Symbol(sym.name, addr, sym["st_size"], kind)
        except OSError as err:
            raise BadInput(f"cannot read firmware ELF {self.path}: {err.strerror}") from None
        except ELFError as err:
            raise BadInput(f"{self.path}: not a valid ELF ({err}); give the firmware ELF `simrun build` prints") from None

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise AbiMismatch(f"{self.path}: symbol {name!r} missing (not a simrun firmware?)") from None

    def address(self, name: str) -> int:
        return self.symbol(name).address

    def size(self, name: str) -> int:
        return self.symbol(name).size

    def check_abi(self) -> "FirmwareImage":
        missing = [n for n in REQUIRED if n not in self.symbols]
        if missing:
            raise AbiMismatch(f"{self.path}: not a simrun firmware, missing symbols: {', '.join(missing)}")
        for name, minimum in REQUIRED.items():
            if minimum and self.symbols[name].size < minimum:
                raise AbiMismatch(f"{self.path}: {name} is {self.symbols[name].size} bytes, "
                                  f"ABI needs at least {minimum}")
        return self

    @property
    def bulk_capacity(self) -> int:
        """Bytes of simrun_bulk, where the host lays out model, arena and capture log."""
        return self.size("simrun_bulk")

    def footprint(self) -> dict[str, int]:
        """Firmware code and data bytes (TEAM.md contract 4), as `size` counts them.

        firmware_text: read-only sections loaded in flash (code, constants, tables);
        firmware_data: writable sections in RAM (.data, .bss), without the
        reserved heap/stack and without the bulk region (model, arena, log).
        """
        text = data = 0
        for name, (flags, size, _kind) in self.sections.items():
            if name in (".bulk", ".heap"):
                continue
            if flags & 0x1:                                  # SHF_WRITE
                data += size
            else:
                text += size
        return {"firmware_text": text, "firmware_data": data}
