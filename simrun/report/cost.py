"""The "Cost on the target" section of every report: instructions executed per
operator and memory per target backend (simrun.analysis.cost.CostSummary,
DiffRun.cost). Terminal: memory per target, then per CPU a per-operator-type
table of the variants side by side with totals. HTML: the same tables, the
per-layer counts, and a bar chart per layer. JSON: `cost_json` (layout below).

    "cost": null | {                             # null: no target backend ran
      "unit": "instructions executed",           # exact counts, not cycles
      "backends": [{
        "backend": label,
        "counted": bool,                         # false: run without --instructions
        "total": int|null,                       # the first input's inference, all operators
        "totals": [int|null, ...],               # per input
        "memory": {"arena_used"?, "model_bytes"?, "firmware_text"?, "firmware_data"?: int (bytes)},
        "by_op_type": {op_name: {"operators": int, "instructions": int}},
        "layers": [{"id": "0:3", "subgraph", "index", "op_name", "instructions": int|null}]
      }],
      "variants": [{                             # two variants of one CPU differing in one thing
        "cpu": str, "a": label, "b": label,      # a: reference kernels / default build
        "differ_in": "kernels" | "single-rounding" | ...,
        "total_a": int|null, "total_b": int|null, "ratio": float|null,   # b / a
        "by_op_type": {op_name: {"a": int|null, "b": int|null, "ratio": float|null}}
      }]
    }
"""
from __future__ import annotations

import base64
import math
from html import escape

from ..analysis.cost import MEMORY_KEYS, CostSummary, VariantCost

MEMORY_LABELS = {"arena_used": "arena used", "model_bytes": "model", "firmware_text": "firmware code",
                 "firmware_data": "firmware data"}


def _num(n) -> str:
    return "—" if n is None else f"{n:,}"


def _ratio(r: float | None) -> str:
    # Two significant digits below 0.1: MVE kernels run at a hundredth of the reference's count.
    return "—" if r is None else f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _memory_text(memory: dict[str, int]) -> str:
    return ", ".join(f"{MEMORY_LABELS[k]} {_kib(memory[k])}" for k in MEMORY_KEYS if k in memory)


# --- terminal ------------------------------------------------------------------

def terminal_lines(cost: CostSummary | None) -> list[str]:
    if cost is None:
        return []
    lines = ["", "cost on the target (instructions executed, exact; not cycles):"]
    for b in cost.backends:
        parts = [_memory_text(b.memory) or "no memory figures"]
        if b.counted:
            parts.insert(0, f"{_num(b.total)} instructions in {len(b.layers)} operators"
                            + (" (differs per input)" if b.varies_with_input else ""))
        lines.append(f"  {b.backend}: " + "; ".join(parts))
    if not cost.counted:
        lines.append("  (instructions not counted: run with --instructions)")
    for v in cost.variants:
        lines += [""] + _table(_variant_rows(v))
    return lines


def _variant_rows(v: VariantCost) -> list[tuple[str, ...]]:
    rows = [(f"{v.cpu}: operator type", v.a, v.b, "b/a")]
    for name, (a, b) in v.by_op_type.items():
        rows.append((name, _num(a), _num(b), _ratio(v.ratio(a, b))))
    rows.append(("total", _num(v.total_a), _num(v.total_b), _ratio(v.total_ratio)))
    return rows


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        out.append("  " + "  ".join(cells).rstrip())
        if n == 0 or n == len(rows) - 2:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out


# --- json --------------------------------------------------------------------------

def cost_json(cost: CostSummary | None) -> dict | None:
    if cost is None:
        return None
    return {
        "unit": "instructions executed",
        "backends": [{
            "backend": b.backend, "counted": b.counted, "total": b.total, "totals": list(b.totals),
            "memory": dict(b.memory),
            "by_op_type": {k: {"operators": n, "instructions": i} for k, (n, i) in b.by_op_type().items()},
            "layers": [{"id": lc.id, "subgraph": lc.subgraph, "index": lc.index, "op_name": lc.op_name,
                        "instructions": lc.instructions} for lc in b.layers],
        } for b in cost.backends],
        "variants": [{
            "cpu": v.cpu, "a": v.a, "b": v.b, "differ_in": v.differ_in,
            "total_a": v.total_a, "total_b": v.total_b, "ratio": v.total_ratio,
            "by_op_type": {k: {"a": a, "b": b, "ratio": v.ratio(a, b)} for k, (a, b) in v.by_op_type.items()},
        } for v in cost.variants],
    }


# --- html ----------------------------------------------------------------------------

def html_section(cost: CostSummary | None) -> str:
    if cost is None:
        return ""
    out = ["<h2 id='cost'>Cost on the target</h2>",
           "<p>Instructions executed per operator, counted exactly by simrun's QEMU plugin: the same on "
           "every run of the same firmware and input. They are not cycles: the emulator models no timing.</p>",
           "<table><tr><th>backend</th><th class='num'>instructions</th>"
           + "".join(f"<th class='num'>{escape(MEMORY_LABELS[k])}</th>" for k in MEMORY_KEYS) + "</tr>"]
    for b in cost.backends:
        out.append(f"<tr><td><code>{escape(b.backend)}</code></td><td class='num'>"
                   f"{_num(b.total) if b.counted else 'not counted'}</td>"
                   + "".join(f"<td class='num'>{_kib(b.memory[k]) if k in b.memory else '—'}</td>"
                             for k in MEMORY_KEYS) + "</tr>")
    out.append("</table>")
    if not cost.counted:
        out.append("<p>Instructions were not counted: run <code>simrun diff</code> with <code>--instructions</code>.</p>")
        return "\n".join(out)
    for v in cost.variants:
        rows = _variant_rows(v)
        out.append(f"<h3>{escape(v.cpu)}: {escape(v.a)} vs {escape(v.b)} (differ in {escape(v.differ_in)})</h3>")
        out.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in rows[0]) + "</tr>"
                   + "".join("<tr><td>" + escape(r[0]) + "</td>"
                             + "".join(f"<td class='num'>{escape(c)}</td>" for c in r[1:]) + "</tr>"
                             for r in rows[1:]) + "</table>")
    svg = layer_chart_svg(cost)
    if svg:
        out.append(f"<img class='plot' alt='instructions per layer' "
                   f"src='data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}'>")
    out.append(_layer_table(cost))
    return "\n".join(out)


def _layer_table(cost: CostSummary) -> str:
    counted = [b for b in cost.backends if b.counted]
    ids = list(dict.fromkeys(lc.id for b in counted for lc in b.layers))
    names = {lc.id: lc.op_name for b in counted for lc in b.layers}
    per = {b.backend: {lc.id: lc.instructions for lc in b.layers} for b in counted}
    head = "<tr><th>layer</th><th>op</th>" + "".join(f"<th class='num'>{escape(b.backend)}</th>" for b in counted) + "</tr>"
    rows = "".join(f"<tr><td class='mono'>{i}</td><td>{escape(names[i])}</td>"
                   + "".join(f"<td class='num'>{_num(per[b.backend].get(i))}</td>" for b in counted) + "</tr>"
                   for i in ids)
    return (f"<details><summary>instructions per layer ({len(ids)} layers)</summary>"
            f"<div class='scroll'><table>{head}{rows}</table></div></details>")


_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def layer_chart_svg(cost: CostSummary) -> str | None:
    """Grouped bars: instructions per layer (execution order), one bar per counted target backend.

    Hand-written SVG like report/plots.py (matplotlib's import alone costs more than a
    host-only diff). A log scale when one layer dwarfs the rest, so small layers stay visible."""
    counted = [b for b in cost.backends if b.counted]
    ids = list(dict.fromkeys(lc.id for b in counted for lc in b.layers))
    if not ids:
        return None
    names = {lc.id: lc.op_name for b in counted for lc in b.layers}
    per = [{lc.id: lc.instructions or 0 for lc in b.layers} for b in counted]
    top = max(max(p.values(), default=0) for p in per) or 1
    low = min((v for p in per for v in p.values() if v), default=1)
    log = top > 50 * low
    group_w = max(30.0, 8.0 * len(counted) + 8)
    left, plot_h, top_y = 80, 260, 40
    width = max(640.0, left + group_w * len(ids) + 20)
    legend_y = top_y + plot_h + 130
    height = legend_y + 16 * len(counted) + 10

    def py(v: float) -> float:
        f = (math.log10(max(v, 1)) / math.log10(top)) if log else v / top
        return top_y + plot_h * (1 - f)
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
           f"viewBox='0 0 {width:.0f} {height:.0f}' font-family='sans-serif' font-size='11'>",
           f"<rect width='{width:.0f}' height='{height:.0f}' fill='white'/>",
           f"<text x='{width / 2:.0f}' y='20' text-anchor='middle' font-size='13'>instructions executed per layer"
           f"{' (log scale)' if log else ''}</text>",
           f"<rect x='{left}' y='{top_y}' width='{group_w * len(ids):.0f}' height='{plot_h}' fill='none' stroke='#444'/>"]
    ticks = [10 ** e for e in range(0, int(math.log10(top)) + 1)] if log else [top * k / 4 for k in range(5)]
    for t in ticks:
        y = py(t)
        out.append(f"<line x1='{left}' x2='{left + group_w * len(ids):.0f}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e5e5e5'/>"
                   f"<text x='{left - 5}' y='{y + 4:.1f}' text-anchor='end'>{_short_num(t)}</text>")
    bar_w = (group_w - 6) / len(counted)
    for i, layer_id in enumerate(ids):
        x0 = left + i * group_w + 3
        for k, p in enumerate(per):
            v = p.get(layer_id, 0)
            if v:
                y = py(v)
                out.append(f"<rect x='{x0 + k * bar_w:.1f}' y='{y:.1f}' width='{bar_w:.1f}' "
                           f"height='{top_y + plot_h - y:.1f}' fill='{_COLORS[k % len(_COLORS)]}'>"
                           f"<title>{escape(counted[k].backend)} {layer_id} {escape(names[layer_id])}: {v:,}</title></rect>")
        cx = left + (i + 0.5) * group_w
        out.append(f"<text transform='translate({cx:.1f},{top_y + plot_h + 8}) rotate(60)' font-size='9'>"
                   f"{layer_id} {escape(names[layer_id])}</text>")
    for k, b in enumerate(counted):
        y = legend_y + 16 * k
        out.append(f"<rect x='{left}' y='{y - 9}' width='10' height='10' fill='{_COLORS[k % len(_COLORS)]}'/>"
                   f"<text x='{left + 15}' y='{y}'>{escape(b.backend)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def _short_num(v: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"
