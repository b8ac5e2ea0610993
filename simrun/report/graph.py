"""The operator graph for report.html: inline SVG, laid out top to bottom by hand.

Each operator of the main subgraph is a box filled by its own error (what it computes
differently when fed the reference's inputs; the propagated error when no diagnosis ran),
outlined in its cause's colour; an edge is red where the tensor on it differs. The first
divergent and the worst layer are labelled, every box has a tooltip with its layer-table
row and links to that row.

Layout (a small Sugiyama-style layering, no library: the graphs are DAGs in execution
order): long-path layers from the inputs, two barycenter sweeps to order each layer, then
fixed-size boxes centred per layer. Models of more than COLLAPSE_ABOVE operators have each
run of at least MIN_RUN quiet operators in a plain chain (one in, one out, no own error,
not marked) drawn as one box, so a few-hundred-operator detector stays a page or two tall.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from . import palette
from .aggregate import CAUSE_ORDER, LayerRow, PairSummary

COLLAPSE_ABOVE = 40
MIN_RUN = 3
MAX_PIECE = 48
_W, _H, _GAP_X, _GAP_Y, _MARGIN = 168, 22, 18, 18, 70


@dataclass(eq=False)                        # identity: nodes go in sets
class _Node:
    ops: list[int]                          # operator indices, in order (one unless collapsed)
    layer: int = 0
    pos: float = 0.0
    preds: set = field(default_factory=set)
    succs: set = field(default_factory=set)


def graph_svg(model, ps: PairSummary | None, row_anchor) -> str:
    """SVG of the model's main graph for one pair (None: nothing differs; boxes uncoloured).
    row_anchor(row id) -> the id of that row in the page's layer table."""
    main = getattr(model, "main", None)
    if main is None or not main.operators:
        return ""
    ops = main.operators
    rows = ps.by_op() if ps is not None else {}
    marked = {ps.first_divergent, ps.worst} if ps is not None else set()
    quiet = {op.index: _quiet(rows.get(op.index, []), marked) for op in ops}
    nodes = _nodes(ops, quiet)
    layers = _layout(nodes)
    width = max(len(layer) for layer in layers) * (_W + _GAP_X) + 2 * _MARGIN
    height = len(layers) * (_H + _GAP_Y) + 20
    xy = {}
    for li, layer in enumerate(layers):
        x0 = (width - len(layer) * (_W + _GAP_X) + _GAP_X) / 2
        for k, node in enumerate(layer):
            xy[id(node)] = (x0 + k * (_W + _GAP_X), 10 + li * (_H + _GAP_Y))
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='opgraph' width='{width:.0f}' height='{height}' "
           f"viewBox='0 0 {width:.0f} {height}' font-family='sans-serif' font-size='11'>"]
    for node in nodes:                                      # edges first, under the boxes
        x1, y1 = xy[id(node)]
        hot = any(r.diverges for r in rows.get(node.ops[-1], []))
        for succ in sorted(node.succs, key=lambda n: n.ops[0]):
            x2, y2 = xy[id(succ)]
            ax, ay, bx, by = x1 + _W / 2, y1 + _H, x2 + _W / 2, y2
            bend = max(12.0, (by - ay) / 2)
            span = succ.layer - node.layer
            # an edge over several layers in one column would run through the boxes between: bulge it out
            side = min(_W / 2 + 30, 22.0 * span) if span > 1 and abs(ax - bx) < _W else 0.0
            out.append(f"<path d='M{ax:.0f},{ay:.0f} C{ax + side:.0f},{ay + bend:.0f} {bx + side:.0f},{by - bend:.0f} "
                       f"{bx:.0f},{by:.0f}' fill='none' stroke='{'#e57373' if hot else '#bbb'}' "
                       f"stroke-width='{1.6 if hot else 1}'/>")
    for node in nodes:
        x, y = xy[id(node)]
        out.append(_box(node, x, y, ops, rows, ps, row_anchor))
    out.append("</svg>")
    return "".join(out)


def _quiet(rows: list[LayerRow], marked: set) -> bool:
    if any(r.id in marked for r in rows):
        return False
    return all((r.own_max or 0) == 0 and r.cause in (None, "none", "inherited") for r in rows)


def _nodes(ops, quiet: dict[int, bool]) -> list[_Node]:
    producer = {t: op.index for op in ops for t in op.outputs}
    preds = {op.index: {producer[t] for t in op.inputs if t in producer and producer[t] != op.index} for op in ops}
    succs: dict[int, set] = {op.index: set() for op in ops}
    for i, ps in preds.items():
        for p in ps:
            succs[p].add(i)
    group = {op.index: [op.index] for op in ops}
    if len(ops) > COLLAPSE_ABOVE:
        for run in _quiet_runs(ops, quiet, preds, succs):
            for w in run:
                group[w] = run
    made: dict[int, _Node] = {}
    for op in ops:
        g = group[op.index]
        if id(g) not in made:
            made[id(g)] = _Node(sorted(g))
    node_of = {i: made[id(group[i])] for i in group}
    for i, ps in preds.items():
        for p in ps:
            a, b = node_of[p], node_of[i]
            if a is not b:
                a.succs.add(b)
                b.preds.add(a)
    return sorted(made.values(), key=lambda n: n.ops[0])


def _quiet_runs(ops, quiet: dict[int, bool], preds: dict[int, set], succs: dict[int, set]) -> list[list[int]]:
    """Runs of quiet operators (consecutive in execution order) drawn as one box each.

    Pieces first: an operator with one reader is a piece by itself; one whose output forks
    (a residual, a C2f split) is a piece with everything up to where the fork rejoins, if that
    is within MAX_PIECE operators, quiet, and nothing else enters or leaves in between. Then
    pieces joined in a plain chain (the one exit feeds only the next piece's entry, which reads
    nothing else) merge. A stage output read again by a later neck forks too far to rejoin, so
    it ends a run: stages, neck concatenations and the branches into detection heads stay visible.
    """
    order = [op.index for op in ops]
    position = {u: k for k, u in enumerate(order)}
    last_use = {u: max((position[v] for v in succs[u]), default=len(order)) for u in order}
    pieces, k = [], 0
    while k < len(order):
        end = k
        if quiet[order[k]] and len(succs[order[k]]) > 1:
            need, j = last_use[order[k]], k + 1
            while j < len(order) and j - k <= MAX_PIECE and quiet[order[j]] \
                    and all(position[p] >= k for p in preds[order[j]]):
                if need <= j:
                    end = j
                    break
                need = max(need, last_use[order[j]])
                j += 1
        pieces.append(order[k:end + 1])
        k = end + 1
    runs = []
    for piece in pieces:
        head, prev = piece[0], runs[-1][-1] if runs else None
        chained = (prev is not None and quiet[head] and quiet[prev] and all(quiet[u] for u in piece)
                   and succs[prev] == {head} and preds[head] == {prev})
        if chained:
            runs[-1].extend(piece)
        else:
            runs.append(list(piece))
    return [r for r in runs if len(r) >= MIN_RUN and all(quiet[u] for u in r)]


def _layout(nodes: list[_Node]) -> list[list[_Node]]:
    for node in nodes:                                      # nodes are in execution order
        node.layer = 1 + max((p.layer for p in node.preds), default=-1)
    layers: list[list[_Node]] = [[] for _ in range(1 + max(n.layer for n in nodes))]
    for node in nodes:
        layers[node.layer].append(node)
    for layer in layers:
        for k, node in enumerate(layer):
            node.pos = k
    for _ in range(2):                                      # barycenter sweeps, down then up
        for layer in layers[1:]:
            _order(layer, lambda n: [p.pos for p in n.preds])
        for layer in reversed(layers[:-1]):
            _order(layer, lambda n: [s.pos for s in n.succs])
    return layers


def _order(layer: list[_Node], neighbours) -> None:
    def key(n):
        pos = neighbours(n)
        return (sum(pos) / len(pos)) if pos else n.pos
    layer.sort(key=key)
    for k, node in enumerate(layer):
        node.pos = k


def _box(node: _Node, x: float, y: float, ops, rows, ps: PairSummary | None, row_anchor) -> str:
    members = [r for i in node.ops for r in rows.get(i, [])]
    own = [r.own_max for r in members if r.own_max is not None]
    prop = [r.max for r in members if r.max is not None]
    integer = any(r.integer for r in members)
    value = max(own) if own else (max(prop) if prop and not (ps and ps.diagnosed) else None)
    fill = palette.error_colour(value, integer) if members else palette.NO_DATA
    causes = [r.cause for r in members if r.cause]
    cause = min(causes, key=_rank) if causes else None
    stroke = palette.CAUSE_COLOURS.get(cause, "#888") if cause else "#888"
    width = 3 if cause not in (None, "none", "inherited") else 1.2
    name = {op.index: op.op_name for op in ops}
    if len(node.ops) == 1:
        text = f"{node.ops[0]} {name[node.ops[0]]}"
        tip = _tip(node.ops[0], name[node.ops[0]], rows.get(node.ops[0], []))
        dash = ""
    else:
        kinds: dict[str, int] = {}
        for i in node.ops:
            kinds[name[i]] = kinds.get(name[i], 0) + 1
        text = f"{node.ops[0]}–{node.ops[-1]}: {len(node.ops)} ops"
        tip = (f"operators {node.ops[0]}–{node.ops[-1]} in a chain, no own error: "
               + ", ".join(f"{k}×{v}" for k, v in kinds.items()))
        dash = " stroke-dasharray='4,2'"
    if len(text) > 27:
        text = text[:26] + "…"
    marks = []
    ids = {r.id for r in members}
    if ps is not None and ps.first_divergent in ids:
        marks.append(f"<text x='{x - 6:.0f}' y='{y + 16:.0f}' text-anchor='end' fill='#e65100' "
                     f"font-weight='bold'>first ▶</text>")
    if ps is not None and ps.worst in ids:
        marks.append(f"<text x='{x + _W + 6:.0f}' y='{y + 16:.0f}' fill='#b71c1c' font-weight='bold'>◀ worst</text>")
    target = next((r.id for r in members if r.diverges), members[0].id if members else None)
    box = (f"<g><title>{escape(tip)}</title><rect x='{x:.0f}' y='{y:.0f}' width='{_W}' height='{_H}' rx='4' "
           f"fill='{fill}' stroke='{stroke}' stroke-width='{width}'{dash}/><text x='{x + _W / 2:.0f}' "
           f"y='{y + 16:.0f}' text-anchor='middle'>{escape(text)}</text></g>")
    if target is not None:
        box = f"<a href='#{row_anchor(target)}'>{box}</a>"
    return box + "".join(marks)


def _rank(cause: str) -> int:
    return CAUSE_ORDER.index(cause) if cause in CAUSE_ORDER else len(CAUSE_ORDER)


def _tip(index: int, op_name: str, rows: list[LayerRow]) -> str:
    if not rows:
        return f"{index} {op_name}: not captured"
    parts = []
    for r in rows:
        spread = r.spread()
        prop = "not compared" if spread is None else (
            f"max |Δ| {_n(spread[2])}" + (f" (min {_n(spread[0])}, median {_n(spread[1])})"
                                        if len(r.propagated) > 1 else ""))
        own = f"; own {_n(r.own_max)}" if r.own_max is not None else ""
        cause = f"; cause {r.cause}" if r.cause else ""
        impact = f"; impact {r.impact:.2%}" if r.impact is not None else ""
        parts.append(f"{r.id} {r.tensor_name.split(';')[0]}: {prop}{own}{cause}{impact}; {r.verdict}")
    return f"{index} {op_name}\n" + "\n".join(parts)


def _n(x: float | None) -> str:
    return "—" if x is None else f"{x:g}" if x == int(x) else f"{x:.3g}"


def legend(integer: bool, diagnosed: bool) -> str:
    """HTML legend under the graph: fill scale and outline colours."""
    what = "own error (isolated)" if diagnosed else "max |Δ|"
    fills = "".join(f"<span class='swatch' style='background:{c}'></span>{escape(t)} "
                    for c, t in palette.error_legend(integer))
    causes = "".join(f"<span class='swatch outline' style='border-color:{c}'></span>{escape(k)} "
                     for k, c in palette.CAUSE_COLOURS.items() if k != "none") if diagnosed else ""
    return (f"<p class='meta legend'>fill: {what}: {fills}"
            + (f"· outline: cause: {causes}" if causes else "")
            + "· red edge: the tensor differs · dashed box: a chain of quiet operators · "
              "hover a box for its row, click to jump to it</p>")
