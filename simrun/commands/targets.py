"""`simrun targets`: the targets table."""
from __future__ import annotations

from ..device.targets import KERNEL_VARIANTS, TARGETS


def register(sub) -> None:
    p = sub.add_parser("targets", help="list supported CPUs, boards and kernel variants")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = [("cpu", "qemu machine", "float abi", "cmsis-nn path", "notes")]
    rows += [(t.cpu, t.qemu_machine, t.float_abi, t.cmsis_nn_path, t.notes) for t in TARGETS.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"kernel variants: {', '.join(KERNEL_VARIANTS)}")
    return 0
