"""Rendering a flow's structure as text, Graphviz DOT, Mermaid or JSON.

All four show the same facts: task nodes (with the elf each is routed to),
expression nodes, calls of other flows (``flow`` nodes), the return, data
edges (labelled with the result key and the parameter they feed), ordering
edges from ``with after(...)``, and the regions (loops, conditions, fan-outs,
``after`` blocks) that enclose them, each with its source line. The JSON shape is::

    {"flows": [{"name", "file", "line", "parameters": [...],
                "nodes": [{"id", "kind", "label", "line", "column", "region",
                           "elf_uid", "elf_class", "task"}],
                "edges": [{"source", "target", "key", "parameter", "kind"}],
                "regions": [{"id", "kind", "label", "line", "parent"}],
                "diagnostics": [{"file", "line", "column", "flow", "severity",
                                 "message", "hint"}]}]}

Several flows render as one document: one DOT digraph each (``dot`` reads a
file of several), and one Mermaid flowchart in which each flow is a subgraph.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from .structure import FlowStructure

FORMATS = ("text", "dot", "mermaid", "json")
_REGION_TAGS = {  # how DOT and Mermaid name the regions decided at run time
    "guarded": "guarded: ",
    "guarded_else": "guarded: ",
    "fanout": "fan-out: ",
}
_REGION_NOTES = {
    "guarded": "    (decided by a task result: guarded jobs)",
    "fanout": "    (over a task result: one copy per element, at run time)",
}


def render(structures: list[FlowStructure], form: str) -> str:
    if form == "json":
        return json.dumps(
            {"flows": [_as_json(s) for s in structures]}, indent=2, ensure_ascii=False
        )
    if form == "mermaid":
        return render_mermaid(structures)
    renderer = {"text": render_text, "dot": render_dot}
    return "\n".join(renderer[form](structure) for structure in structures)


def _as_json(structure: FlowStructure) -> dict:
    return {
        "name": structure.name,
        "file": structure.file,
        "line": structure.line,
        "parameters": structure.parameters,
        "nodes": [asdict(node) for node in structure.nodes],
        "edges": [asdict(edge) for edge in structure.edges],
        "regions": [asdict(region) for region in structure.regions],
        "diagnostics": [
            dict(
                d.span.as_record(), severity=d.severity, message=d.message, hint=d.hint
            )
            for d in structure.diagnostics
        ],
    }


def _routing(node) -> str:
    if node.kind == "flow":
        return "flow %s, built into this run (its own preview shows its jobs)" % (
            node.task
        )
    if node.kind != "task":
        return ""
    if node.elf_class is None:
        return "elf not resolvable before the run"
    uid = "%r" % node.elf_uid if node.elf_uid is not None else "(uid set at run)"
    return "elf %s (%s)" % (uid, node.elf_class)


# -- text -------------------------------------------------------------------------


def render_text(structure: FlowStructure) -> str:
    lines = [
        "flow %s(%s)    %s:%d"
        % (
            structure.name,
            ", ".join(structure.parameters),
            structure.file,
            structure.line,
        )
    ]
    incoming = _incoming(structure)
    _text_region(structure, None, 1, lines, incoming)
    if not structure.nodes:
        lines.append("  (no task calls)")
    return "\n".join(lines) + "\n"


def _text_region(structure, region_id, depth: int, lines: list, incoming) -> None:
    indent = "  " * depth
    items = [
        (n.line, 0, i, n)
        for i, n in enumerate(structure.nodes)
        if n.region == region_id
    ]
    items += [
        (r.line, 1, i, r)
        for i, r in enumerate(structure.regions)
        if r.parent == region_id
    ]
    for _, is_region, _, item in sorted(items, key=lambda entry: entry[:3]):
        if is_region:
            note = _REGION_NOTES.get(item.kind, "")
            lines.append("%s%s:    line %d%s" % (indent, item.label, item.line, note))
            _text_region(structure, item.id, depth + 1, lines, incoming)
            continue
        if item.kind == "return":
            lines.append("%sreturn    line %d" % (indent, item.line))
        else:
            kind = {"task": "task", "flow": "flow"}.get(item.kind, "expr")
            lines.append(
                "%s%-4s %s %s    line %d"
                % (indent, item.id, kind, item.label, item.line)
            )
        detail = indent + "          "
        if _routing(item):
            lines.append(detail + "→ " + _routing(item))
        if getattr(item, "guard", None):
            lines.append(detail + "? " + item.guard)
        for edge in incoming.get(item.id, []):
            lines.append(detail + "← %s%s" % (edge.source, _text_edge(edge)))


def _text_edge(edge) -> str:
    text = ""
    if edge.key is not None:
        text += "[%r]" % edge.key
    if edge.parameter:
        text += " as %s" % edge.parameter
    if edge.kind == "after":
        text += " (after: waits, takes no value)"
    return text


def _incoming(structure: FlowStructure) -> dict:
    incoming: dict = {}
    for edge in structure.edges:
        incoming.setdefault(edge.target, []).append(edge)
    return incoming


# -- Graphviz DOT -------------------------------------------------------------------


def render_dot(structure: FlowStructure) -> str:
    lines = [
        "digraph %s {" % _dot_id("flow " + structure.name),
        "  label=%s;"
        % _dot_id(
            "flow %s(%s)  %s:%d"
            % (
                structure.name,
                ", ".join(structure.parameters),
                structure.file,
                structure.line,
            )
        ),
        "  labelloc=t; rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    _dot_region(structure, None, lines, "  ")
    for edge in structure.edges:
        style = ', style=dashed, color="gray40"' if edge.kind == "after" else ""
        lines.append(
            "  %s -> %s [label=%s%s];"
            % (_dot_id(edge.source), _dot_id(edge.target), _dot_id(edge.label()), style)
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_region(structure, region_id, lines: list, indent: str) -> None:
    for node in structure.nodes:
        if node.region == region_id:
            lines.append("%s%s [%s];" % (indent, _dot_id(node.id), _dot_node(node)))
    for region in structure.regions:
        if region.parent == region_id:
            lines.append("%ssubgraph %s {" % (indent, _dot_id("cluster_" + region.id)))
            style = {
                "condition": "dashed",
                "else": "dashed",
                "case": "dashed",
                "guarded": "bold",
                "guarded_else": "bold",
                "fanout": '"bold,filled"; fillcolor="gray95"',
            }.get(region.kind, "rounded")
            lines.append(
                "%s  label=%s; style=%s;"
                % (
                    indent,
                    _dot_id(
                        "%s%s  (line %d)"
                        % (_REGION_TAGS.get(region.kind, ""), region.label, region.line)
                    ),
                    style,
                )
            )
            _dot_region(structure, region.id, lines, indent + "  ")
            lines.append(indent + "}")


def _dot_node(node) -> str:
    if node.kind == "task":
        label = _dot_label(
            "%s  %s" % (node.id, node.label),
            "line %d" % node.line,
            _routing(node),
            *(["guarded: may be skipped"] if node.guard else []),
        )
        style = '"filled,dashed"' if node.guard else "filled"
        return 'shape=box, style=%s, fillcolor="#e8f0fe", label=%s' % (style, label)
    if node.kind == "expression":
        label = _dot_label("%s  %s" % (node.id, node.label), "line %d" % node.line)
        return "shape=ellipse, label=%s" % label
    if node.kind == "flow":
        label = _dot_label(
            "%s  %s" % (node.id, node.label), "line %d" % node.line, _routing(node)
        )
        return "shape=component, label=%s" % label
    return "shape=doublecircle, label=%s" % _dot_label("return", "line %d" % node.line)


def _dot_id(text: str) -> str:
    return '"%s"' % _dot_escape(text)


def _dot_label(*lines: str) -> str:
    """A quoted label of several lines; the user's text stays literal."""
    return '"%s"' % "\\n".join(_dot_escape(line) for line in lines)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- Mermaid ------------------------------------------------------------------------


def render_mermaid(structures: list[FlowStructure]) -> str:
    """One flowchart; each flow is a subgraph with its own node ids."""
    lines = ["flowchart TD"]
    for number, structure in enumerate(structures):
        prefix = "f%d_" % number
        lines.append(
            '  subgraph %sflow["%s"]'
            % (
                prefix,
                _mermaid_text(
                    "flow %s(%s)" % (structure.name, ", ".join(structure.parameters))
                ),
            )
        )
        _mermaid_region(structure, None, lines, "    ", prefix)
        lines.append("  end")
        for edge in structure.edges:
            arrow = "-.->" if edge.kind == "after" else "-->"
            label = edge.label()
            middle = '|"%s"|' % _mermaid_text(label) if label else ""
            lines.append(
                "  %s%s %s%s %s%s"
                % (
                    prefix,
                    _mermaid_id(edge.source),
                    arrow,
                    middle,
                    prefix,
                    _mermaid_id(edge.target),
                )
            )
    return "\n".join(lines) + "\n"


def _mermaid_region(
    structure, region_id, lines: list, indent: str, prefix: str
) -> None:
    for node in structure.nodes:
        if node.region == region_id:
            lines.append(indent + prefix + _mermaid_node(node))
    for region in structure.regions:
        if region.parent == region_id:
            lines.append(
                '%ssubgraph %s%s["%s"]'
                % (
                    indent,
                    prefix,
                    _mermaid_id(region.id),
                    _mermaid_text(
                        "%s%s · line %d"
                        % (_REGION_TAGS.get(region.kind, ""), region.label, region.line)
                    ),
                )
            )
            _mermaid_region(structure, region.id, lines, indent + "  ", prefix)
            lines.append(indent + "end")


def _mermaid_node(node) -> str:
    text = "%s: %s<br/>line %d" % (node.id, _mermaid_text(node.label), node.line)
    if node.kind == "task":
        guard = "<br/>guarded: may be skipped" if node.guard else ""
        return '%s["%s<br/>%s%s"]' % (
            _mermaid_id(node.id),
            text,
            _mermaid_text(_routing(node)),
            guard,
        )
    if node.kind == "expression":
        return '%s(["%s"])' % (_mermaid_id(node.id), text)
    if node.kind == "flow":
        return '%s[["%s"]]' % (_mermaid_id(node.id), text)
    return '%s((("return")))' % _mermaid_id(node.id)


def _mermaid_id(node_id: str) -> str:
    return "n_" + node_id


def _mermaid_text(text: str) -> str:
    replacements = {
        "&": "#amp;",
        '"': "#quot;",
        "<": "#lt;",
        ">": "#gt;",
        "|": "#124;",
        "[": "#91;",
        "]": "#93;",
        "{": "#123;",
        "}": "#125;",
    }
    return "".join(replacements.get(char, char) for char in text)
