"""Sequences of a stateful (streaming) model, step by step: per pair of backends, what
each step compared, and the first step and layer where the pair parts.

A stateful model's output at step k depends on every step before it, so the first
divergent step matters more than any one step's figures: a difference that appears
at step 3 and stays is carried in the state, one at every step from step 0 on is a
kernel's. Only DiffRuns made with sequences (`simrun diff --sequence/--steps`)
have this section: in the terminal, in summary.json ("sequences") and in report.html.
"""
from __future__ import annotations

from ..analysis.diffrun import DiffRun


def summarize(run: DiffRun) -> list[dict]:
    """[{"sequence", "steps", "pairs": [{"pair", "first_divergent", "divergent_steps",
    "steps": [per-step figures]}]}], JSON-safe."""
    out = []
    for name, indices in run.sequences.items():
        pairs: dict[str, dict] = {}
        for step, i in enumerate(indices):
            for pair in run.comparisons[i].pairs:
                entry = pairs.setdefault(pair.name, {"pair": pair.name, "first_divergent": None,
                                                     "divergent_steps": 0, "steps": []})
                first = pair.first_divergent
                divergent = [s for s in pair.layers + pair.outputs if s.diverges]
                entry["steps"].append({
                    "step": step, "input": run.input_names[i],
                    "layers_compared": len(pair.compared_layers),
                    "layers_divergent": len(divergent),
                    "mismatch_ratio": pair.mismatch_ratio,
                    "max_abs_delta": pair.max_abs_delta,
                    "first_divergent": first.label if first else None,
                })
                if divergent:
                    entry["divergent_steps"] += 1
                if first is not None and entry["first_divergent"] is None:
                    entry["first_divergent"] = {"step": step, "input": run.input_names[i],
                                                "layer": first.id, "op": first.op_name,
                                                "tensor": first.tensor_name, "depth": first.depth}
        out.append({"sequence": name, "steps": len(indices), "pairs": list(pairs.values())})
    return out


def render(run: DiffRun) -> str:
    """Terminal lines: per sequence and pair, where it first diverges, then one line per
    step (for pairs that differ somewhere; summary.json-style figures are in write())."""
    lines = []
    for seq in summarize(run):
        lines.append(f"sequence {seq['sequence']} ({seq['steps']} steps, state carried over):")
        for pair in seq["pairs"]:
            first = pair["first_divergent"]
            if first is None:
                lines.append(f"  {pair['pair']}: identical at every step and layer")
                continue                                   # no per-step lines to read
            else:
                lines.append(f"  {pair['pair']}: first diverges at step {first['step']}, layer "
                             f"{first['layer']} {first['op']} {first['tensor']}".rstrip()
                             + f"; {pair['divergent_steps']} of {seq['steps']} steps differ")
            for st in pair["steps"]:
                where = f", first at {st['first_divergent']}" if st["first_divergent"] else ""
                lines.append(f"    step {st['step']:>3}: {st['layers_divergent']} divergent of "
                             f"{st['layers_compared']} layers, mismatch "
                             f"{100 * st['mismatch_ratio']:.2f}%, max |Δ| {st['max_abs_delta']:g}{where}")
    return "\n".join(lines)


def html(run: DiffRun) -> str:
    """The report.html section: per sequence, a row per pair (where it first diverges), and a
    table of steps for the pairs that diverge somewhere."""
    from html import escape

    out = ["<h2>Sequences</h2>"]
    for seq in summarize(run):
        out.append(f"<h3>Sequence {escape(seq['sequence'])} ({seq['steps']} steps, state carried "
                   f"over)</h3><ul>")
        for pair in seq["pairs"]:
            first = pair["first_divergent"]
            where = ("identical at every step and layer" if first is None else
                     f"first diverges at step {first['step']}, layer <code>{escape(first['layer'])}"
                     f"</code> {escape(first['op'])} {escape(first['tensor'] or '')}; "
                     f"{pair['divergent_steps']} of {seq['steps']} steps differ")
            out.append(f"<li>{escape(pair['pair'])}: {where}</li>")
        out.append("</ul>")
        for pair in seq["pairs"]:
            if pair["first_divergent"] is None:
                continue
            rows = "".join(
                f"<tr><td>{st['step']}</td><td>{st['layers_divergent']} / {st['layers_compared']}</td>"
                f"<td>{100 * st['mismatch_ratio']:.2f}%</td><td>{st['max_abs_delta']:g}</td>"
                f"<td>{escape(st['first_divergent'] or '-')}</td></tr>" for st in pair["steps"])
            out.append(f"<table><caption>{escape(pair['pair'])}</caption><tr><th>step</th>"
                       f"<th>divergent layers</th><th>mismatch</th><th>max |Δ|</th>"
                       f"<th>first divergent layer</th></tr>{rows}</table>")
    return "\n".join(out)
