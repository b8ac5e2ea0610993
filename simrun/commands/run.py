"""`simrun run`: one model on one emulated target, per-layer shapes and checksums."""
from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

from ..capture import Capture, Tensor
from ..errors import BadInput, require_writable_dir
from ..backend_id import FirmwareVariant
from ..device.targets import EMULATORS, KERNEL_VARIANTS, TARGETS
from ..run_options import RunOptions


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="run a model on one emulated CPU and capture every layer's outputs",
        description="Build (or reuse) the firmware for CPU and KERNELS, run MODEL in the emulator "
                    "on one input, print each operator's outputs (shape, dtype, CRC32) and save "
                    "the capture as .npz.")
    p.add_argument("model", type=Path, help=".tflite model (or fixture model bytes with --raw)")
    p.add_argument("--cpu", required=True, choices=sorted(TARGETS), help="emulated CPU")
    p.add_argument("--kernels", default="reference", choices=KERNEL_VARIANTS,
                   help="TFLM kernel variant (default reference)")
    p.add_argument("--input", default="random:0", metavar="SPEC",
                   help=".npy/.npz/image or random[:SEED] (default random:0)")
    p.add_argument("--out", type=Path, metavar="FILE.npz", help="save the Capture here")
    p.add_argument("--no-layers", action="store_true",
                   help="plain run: final outputs only (faster, no per-operator stops)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="wall-clock budget per emulator wait (default: 300 times the emulator's "
                        "slowdown: QEMU 1, Renode 6)")
    p.add_argument("--elf", type=Path, metavar="PATH",
                   help="use this firmware ELF instead of building one")
    p.add_argument("--emulator", default="qemu", choices=EMULATORS)
    p.add_argument("--gdb", metavar="HOST:PORT",
                   help="attach to an emulator you started (halted at reset, this firmware loaded, its GDB "
                        "server on this machine, e.g. 127.0.0.1:3333) instead of starting one")
    p.add_argument("--arena-limit", type=int, metavar="BYTES",
                   help="let the firmware use only this much of its arena")
    p.add_argument("--instructions", action="store_true",
                   help="count the instructions each operator executes (exact; QEMU: our plugin, "
                        "Renode: its own counter)")
    p.add_argument("--raw", action="store_true",
                   help="MODEL is not TFLite but the fixture firmware's own format (needs --elf)")
    p.set_defaults(func=run)


def checksum(values: np.ndarray) -> str:
    return f"{zlib.crc32(np.ascontiguousarray(values).tobytes()):08x}"


def describe(t: Tensor) -> str:
    return f"t{t.index} {t.dtype}{list(t.shape)} crc32={checksum(t.values)}"


def print_capture(cap: Capture, out=None) -> None:
    out = out or sys.stdout   # looked up per call: tests and tools swap sys.stdout
    for rec in cap.ops:
        outs = ", ".join(describe(t) for t in rec.outputs)
        cost = "" if rec.instructions is None else f"{rec.instructions:>12,} instr  "
        print(f"{rec.subgraph}:{rec.index:<3} {rec.op_name:<22} {cost}{outs}", file=out)
    for i, t in enumerate(cap.outputs):
        print(f"output {i}: {describe(t)}", file=out)
    meta = cap.meta
    print(f"{cap.backend}: {len(cap.ops)} operators, invoke {meta.get('invoke_seconds', 0):.3f} s, "
          f"arena used {meta.get('arena_used', '?')} bytes", file=out)
    if "model_bytes" in meta or "firmware_text" in meta:
        print(f"{cap.backend}: model {meta.get('model_bytes', '?')} bytes, firmware code "
              f"{meta.get('firmware_text', '?')} bytes, data {meta.get('firmware_data', '?')} bytes", file=out)
    if meta.get("instructions_total") is not None:
        print(f"{cap.backend}: {meta['instructions_total']:,} instructions executed by the operators "
              f"({meta.get('instruction_counter', '?')})", file=out)


def _firmware(args) -> tuple[Path, str | None]:
    from ..device.build import ensure_firmware, read_metadata

    if args.elf:
        if not args.elf.is_file():
            raise BadInput(f"--elf {args.elf}: no such file")
        # A simrun-built ELF's metadata names its kernels; then the Session's label wins over --kernels.
        return args.elf, None if read_metadata(args.elf) else FirmwareVariant(args.cpu, args.kernels).label
    if args.raw:
        raise BadInput("--raw models run only on a firmware given with --elf (e.g. the fixture)")
    fw = ensure_firmware(args.cpu, args.kernels, progress=lambda msg: print(msg, file=sys.stderr))
    return fw.elf, FirmwareVariant(args.cpu, args.kernels).label


def _raw_input(spec: str, details) -> list[np.ndarray]:
    # Fixture models carry no TFLite metadata: shape and dtype come from the firmware.
    if spec.startswith("random"):
        seed = int(spec.split(":", 1)[1]) if ":" in spec else 0
        rng = np.random.default_rng(seed)
        return [rng.integers(np.iinfo(d.dtype).min, np.iinfo(d.dtype).max, d.shape, endpoint=True)
                .astype(d.dtype) for d in details]
    if spec.endswith(".npy") and len(details) == 1:
        return [np.load(spec, allow_pickle=False)]
    raise BadInput(f"--raw takes --input random[:SEED] or one .npy, not {spec!r}")


def run(args) -> int:
    from ..backends.device import open_session
    from ..model import Model

    # How the session runs; which firmware (--elf or a build) and model format (--raw) are below.
    options = RunOptions(session_timeout=args.timeout, emulator=args.emulator, gdb=args.gdb,
                         arena_limit=args.arena_limit, count_instructions=args.instructions)
    if args.raw:
        model, samples = None, None
    else:
        from ..inputs import load_inputs
        model = Model.from_file(args.model)
        samples = load_inputs(model, [args.input])
        if len(samples) != 1:
            print(f"note: {args.input} holds {len(samples)} samples; running the first", file=sys.stderr)
    if args.out:    # checked before the emulator runs, not after
        require_writable_dir(args.out.parent, BadInput, "--out directory", "give --out a file in a "
                             "directory you can write")
    elf, label = _firmware(args)
    with open_session(elf, args.cpu, options, label) as session:
        if args.raw:
            session.load_model(args.model, raw=True)
            sample = _raw_input(args.input, session.input_details)
        else:
            session.load_model(model)
            sample = samples[0]
        cap = session.invoke(sample, capture_layers=not args.no_layers)
    print_capture(cap)
    if args.out:
        cap.save(args.out)
        print(f"saved {args.out}")
    return 0
