"""The preview: a flow's structure read from its source, without running it.

``python -m blumycelium.compile`` shows what a flow will do before any
argument exists. Where a submitted run holds the unrolled graph for the
arguments it was called with, the preview holds one node per task call *as
written*, inside the loops and conditions that enclose it (*regions*), so a
loop over an argument shows as a loop and a condition as a condition.

The analysis is an abstract interpretation of the flow body. It tracks, for
every local name, which nodes its value may come from (a set of *sources*:
a node id and a result key), merging at the end of ``if`` branches and
iterating loops until the names stop changing:

- a task call (``x.task_y(...)``) is a ``task`` node; its arguments' sources
  become edges labelled with the parameter they feed;
- an expression over deferred values (anything but a bare name or a
  ``result["key"]``) becomes an ``expression`` node when it reaches a task,
  a name, a container or the ``return``;
- ``container.append(value)`` and item assignment add sources to the
  container; ``with after(...)`` adds ordering edges to the jobs inside.

Elves are resolved in the flow's globals and closure (or from constructor
calls in the flow), which gives each task node its routing (elf uid and
class) and lets the checks run: unknown tasks, argument counts and keywords,
result keys (with did-you-mean), and the constructs the runtime would refuse
on deferred values (``if``/``while`` tests, ``for`` iterables, ordinary
function calls, ``print``).
"""

from __future__ import annotations

import builtins
import inspect

import libcst as cst

from .analysis_values import ValueAnalysis
from .branches import FAN_OUT_HINT, FAN_OUT_REFUSALS, IN_PLACE, carried_refusal
from .cstscan import chain_escape, fan_out_obstacle, for_names, loop_names
from .cstsource import ParsedFlow
from .diagnostics import Diagnostic
from .structure import (
    STATIC,
    Edge,
    Flowing,
    FlowStructure,
    Node,
    Region,
    merge,
    ordered,
    target_names,
)

_LABEL_WIDTH = 60


def analyse_flow(parsed: ParsedFlow, function) -> FlowStructure:
    """The structure of one parsed flow; ``function`` resolves its names."""
    definition = parsed.function
    span = parsed.span(definition.name)
    structure = FlowStructure(
        definition.name.value,
        span.file,
        span.line,
        _parameter_names(definition.params),
    )
    analyser = _Analyser(parsed, structure, _namespace(function))
    analyser.block(definition.body)
    return structure


def _namespace(function) -> dict:
    namespace = dict(vars(builtins))
    namespace.update(function.__globals__)
    try:
        namespace.update(inspect.getclosurevars(function).nonlocals)
    except (TypeError, ValueError):
        pass
    return namespace


def _parameter_names(params: cst.Parameters) -> list[str]:
    """Parameter names as a call would see them: *args and **kwargs marked."""
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    if isinstance(params.star_arg, cst.Param):
        names.append("*" + params.star_arg.name.value)
    names += [p.name.value for p in params.kwonly_params]
    if params.star_kwarg is not None:
        names.append("**" + params.star_kwarg.name.value)
    return names


def _all_params(params: cst.Parameters) -> list:
    found = [*params.posonly_params, *params.params, *params.kwonly_params]
    for extra in (params.star_arg, params.star_kwarg):
        if isinstance(extra, cst.Param):
            found.append(extra)
    return found


class _Analyser(ValueAnalysis):
    """Walks statements in order, tracking which nodes each name comes from."""

    def __init__(self, parsed: ParsedFlow, structure: FlowStructure, namespace):
        self.parsed = parsed
        self.structure = structure
        self.namespace = namespace
        self.env: dict[str, Flowing] = {}
        self.one_branch: dict[str, tuple[int, str]] = {}  # name: (if line, missing)
        self.fanouts: list[set[str]] = []  # names each fan-out being read binds
        self.node_ids: dict[int, str] = {}
        self.region_ids: dict[tuple, str] = {}
        self.node_cst: dict = {}
        self.counts: dict[str, int] = {}
        self.function_depth = 0
        self.edge_keys: set = set()
        self.reported: set = set()
        self.region_stack: list[str | None] = [None]
        self.after_stack: list[frozenset] = []
        self.local_functions: set[str] = set()
        self.consumed_generators: set[int] = set()  # ids of call arguments
        self.gathered: set[str] = set()  # lists a fan-out grew: they may grow on
        self.local_elves: dict[str, tuple] = {}
        self.task_specs: dict[str, object] = {}

    # -- output -----------------------------------------------------------------

    def report(self, node: cst.CSTNode, message: str, hint: str = "") -> None:
        span = self.parsed.span(node)
        key = (span.line, span.column, message)
        if key not in self.reported:
            self.reported.add(key)
            self.structure.diagnostics.append(Diagnostic(span, message, hint))

    def add_node(self, cst_node, kind: str, **details) -> str:
        existing = self.node_ids.get(id(cst_node))
        if existing is not None:
            return existing
        self.counts[kind] = self.counts.get(kind, 0) + 1
        node_id = "%s%d" % (
            {"task": "j", "expression": "e", "flow": "f"}[kind],
            self.counts[kind],
        )
        span = self.parsed.span(cst_node)
        self.structure.nodes.append(
            Node(
                node_id,
                kind,
                self.label(cst_node),
                span.line,
                span.column + 1,
                self.region_stack[-1],
                **details,
            )
        )
        self.node_ids[id(cst_node)] = node_id
        self.node_cst[node_id] = cst_node
        return node_id

    def add_edge(self, source, target: str, parameter=None, kind="data") -> None:
        node_id, key = source
        edge_key = (node_id, target, key, parameter, kind)
        if edge_key not in self.edge_keys:
            self.edge_keys.add(edge_key)
            self.structure.edges.append(Edge(node_id, target, key, parameter, kind))

    def label(self, node: cst.CSTNode) -> str:
        text = " ".join(self.parsed.module.code_for_node(node).split())
        return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 1] + "…"

    def enter_region(self, kind: str, label: str, node: cst.CSTNode) -> None:
        region_id = self.region_ids.get((id(node), kind))
        if region_id is None:
            region_id = "r%d" % (len(self.structure.regions) + 1)
            self.region_ids[(id(node), kind)] = region_id
            self.structure.regions.append(
                Region(
                    region_id,
                    kind,
                    label,
                    self.parsed.span(node).line,
                    self.region_stack[-1],
                )
            )
        self.region_stack.append(region_id)

    def enclosing_region(self, *kinds: str) -> Region | None:
        """The innermost enclosing region of one of these kinds."""
        regions = {r.id: r for r in self.structure.regions}
        for region_id in reversed(self.region_stack):
            region = regions.get(region_id)
            if region is not None and region.kind in kinds:
                return region
        return None

    def enclosing_guard(self) -> str | None:
        """Why a job created here may be skipped, if a branch on a task result
        encloses it."""
        region = self.enclosing_region("guarded", "guarded_else")
        if region is None:
            return None
        return "runs only when the task result takes this branch (%s, line %d)" % (
            region.label,
            region.line,
        )

    def leave_region(self) -> None:
        self.region_stack.pop()

    def refuse_deferred(self, node: cst.CSTNode, need: str) -> None:
        self.report(
            node,
            "%s needs the value of `%s` at submit time, but it is"
            " known only when a job has run" % (need, self.label(node)),
            "pass the value to a task and decide there",
        )

    def test(self, node: cst.BaseExpression, keyword: str) -> None:
        if self.value(node).is_result:
            self.refuse_deferred(node, "`%s`" % keyword)

    # -- statements -------------------------------------------------------------

    def block(self, body) -> None:
        statements = body.body if hasattr(body, "body") else body
        for statement in statements:
            self.statement(statement)

    def statement(self, node) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.statement(small)
            return
        handler = getattr(self, "statement_" + type(node).__name__, None)
        if handler is not None:
            handler(node)

    def statement_Expr(self, node: cst.Expr) -> None:
        self.value(node.value)

    def statement_Assert(self, node: cst.Assert) -> None:
        self.test(node.test, "assert")

    def statement_Del(self, node: cst.Del) -> None:
        self.check_in_place(node.target)
        target = node.target
        if isinstance(target, cst.Subscript) and self.value(target.value).is_result:
            self.report(
                target,
                "deleting an item of a task result: task results"
                " are read-only snapshots",
            )

    def statement_Assign(self, node: cst.Assign) -> None:
        self.note_elf_constructor(node)
        if isinstance(node.value, cst.Lambda):
            self.local_functions.update(
                t.target.value for t in node.targets if isinstance(t.target, cst.Name)
            )
        pairs = _paired(node)
        if pairs:  # a, b = [], f(x): each name gets its own value
            values = [(t, e, self.value(e)) for t, e in pairs]
            for target, element, value in values:
                self.assign(target, self.stored(value, element), node)
            return
        value = self.value(node.value)
        flowing = self.stored(value, node.value)
        for target in node.targets:
            self.assign(target.target, flowing, node)

    def stored(self, value: Flowing, node) -> Flowing:
        """What a name assigned ``value`` (written as ``node``) holds."""
        return Flowing(self.materialize(value, node), False, value.container)

    def statement_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            value = self.value(node.value)
            self.assign(node.target, self.stored(value, node.value), node)

    def statement_AugAssign(self, node: cst.AugAssign) -> None:
        self.check_in_place(node.target)
        target = self.value(node.target)
        value = self.value(node.value)
        if not isinstance(node.target, cst.Name) or not (
            target.deferred or value.deferred
        ):
            return
        if target.container and value.container:
            self.env[node.target.value] = target.merge(value)
        else:
            combined = target.union(value)
            self.env[node.target.value] = Flowing(self.materialize(combined, node))

    def statement_Return(self, node: cst.Return) -> None:
        if node.value is None:
            return
        if self.function_depth:
            self.value(node.value)
            return
        sources = self.materialize(self.value(node.value), node.value)
        if not any(n.kind == "return" for n in self.structure.nodes):
            span = self.parsed.span(node)
            self.structure.nodes.append(
                Node("return", "return", "return", span.line, span.column + 1, None)
            )
        for source in ordered(sources):
            self.add_edge(source, "return")

    def check_in_place(self, target) -> None:
        """``x[k] = v``, ``x.a += 1``, ``del x[k]``, ``x.pop()`` in a loop
        over a task result, on an object bound before it: refused."""
        if not (self.fanouts and isinstance(target, (cst.Subscript, cst.Attribute))):
            return
        while isinstance(target, (cst.Subscript, cst.Attribute)):
            target = target.value
        if not isinstance(target, cst.Name):
            return
        if (
            target.value not in self.fanouts[-1]
            and not self.env.get(target.value, STATIC).is_result
        ):
            message, hint = IN_PLACE["loop"]
            self.report(target, message % target.value, hint)

    def from_flows(self, flowing: Flowing) -> bool:
        """Whether a value comes only from calls of other flows."""
        kinds = {node.id: node.kind for node in self.structure.nodes}
        return all(kinds.get(node) == "flow" for node, _ in flowing.sources)

    def assign(self, target, flowing: Flowing, statement) -> None:
        if isinstance(target, (cst.Subscript, cst.Attribute)):
            self.check_in_place(target)
        if isinstance(target, cst.Name):
            self.env[target.value] = flowing
            self.one_branch.pop(target.value, None)
            self.gathered.discard(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            # what another flow returns is not read here: it may be a tuple
            if flowing.is_result and not self.from_flows(flowing):
                self.refuse_deferred(statement, "unpacking")
            for element in target.elements:
                self.assign(element.value, Flowing(flowing.sources), statement)
        elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            name = target.value.value
            held = self.env.get(name, STATIC)
            if held.is_result:
                self.report(
                    target,
                    "item assignment would change a task result,"
                    " which is a read-only snapshot",
                    "build a new value instead, e.g. {**r['d'], 'k': v}",
                )
            self.env[name] = Flowing(held.sources | flowing.sources, False, True)
        elif isinstance(target, cst.StarredElement):
            self.assign(target.value, flowing, statement)

    def bind(self, target, flowing: Flowing) -> None:
        for name in target_names(target):
            self.env[name] = flowing

    def note_elf_constructor(self, node: cst.Assign) -> None:
        value = node.value
        if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name)):
            return
        owner = self.namespace.get(value.func.value)
        if not (inspect.isclass(owner) and hasattr(owner, "__blumycelium_tasks__")):
            return
        first = value.args[0].value if value.args else None
        uid = first.evaluated_value if isinstance(first, cst.SimpleString) else None
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self.local_elves[target.target.value] = (uid, owner)

    def statement_If(self, node: cst.If, guarded: bool = False) -> None:
        deferred = self.value(node.test).is_result
        escape = chain_escape(node)
        if deferred and escape:
            self.refuse_deferred(node.test, "`if`")
        guarded = guarded or (deferred and not escape)
        kind = "guarded" if guarded else "condition"
        before = dict(self.env)
        self.enter_region(kind, "if %s" % self.label(node.test), node)
        self.block(node.body)
        self.leave_region()
        after_body, self.env = self.env, before
        if node.orelse is not None:
            self.branch(node.orelse, guarded)
        if deferred and not escape:
            self.note_one_branch(node, before, after_body, self.env)
        self.env = merge(after_body, self.env)

    def note_one_branch(self, node, before: dict, body: dict, orelse: dict) -> None:
        """Names an ``if`` on a task result binds in one branch only: using
        them after it is an error (``use_of``)."""
        line = self.parsed.span(node).line
        for name in (set(body) ^ set(orelse)) - set(before):
            self.one_branch[name] = (line, "else" if name in body else "if")

    def branch(self, orelse, guarded: bool) -> None:
        if isinstance(orelse, cst.If):
            self.statement_If(orelse, guarded)
            return
        self.enter_region("guarded_else" if guarded else "else", "else", orelse)
        self.block(orelse.body)
        self.leave_region()

    def statement_For(self, node: cst.For) -> None:
        iterated = self.value(node.iter)
        label = "for %s in %s" % (self.label(node.target), self.label(node.iter))
        kind = "loop"
        if iterated.is_result and self.can_fan_out(node):
            kind = "fanout"
        if kind == "fanout":
            self.fanouts.append(for_names(node))
        self.loop(
            node,
            label,
            lambda: self.bind(node.target, Flowing(iterated.sources)),
            kind,
        )
        if kind == "fanout":
            self.fanouts.pop()
        if kind == "fanout":  # the lists it grew exist once the run built them
            for name in loop_names(node)[1]:
                if name in self.env:
                    self.env[name] = Flowing(self.env[name].sources, True)
                    self.gathered.add(name)

    def can_fan_out(self, node: cst.For) -> bool:
        """Report what keeps a loop over a task result from fanning out."""
        obstacle = fan_out_obstacle(node)
        if obstacle is not None:
            self.refuse_fan_out(node.iter, obstacle)
            return False
        _, grown, carried = loop_names(node)  # `total += x` is in grown
        names = sorted(
            n
            for n in carried | grown
            if n in self.env
            and not self.env[n].container
            and not (n in grown and n in self.gathered)  # grows on, as the run's
        )
        if names:
            self.report(node.iter, *carried_refusal(names))
            return False
        return True

    def refuse_fan_out(self, node: cst.CSTNode, obstacle: str) -> None:
        self.report(
            node,
            "this `for` needs the value of `%s` at submit time, but it is known"
            " only when a job has run; a loop over a task result runs one job"
            " per element, and this one cannot: %s"
            % (self.label(node), FAN_OUT_REFUSALS[obstacle]),
            FAN_OUT_HINT,
        )

    def statement_While(self, node: cst.While) -> None:
        self.loop(
            node,
            "while %s" % self.label(node.test),
            lambda: self.test(node.test, "while"),
        )

    def loop(self, node, label: str, start, kind: str = "loop") -> None:
        before = dict(self.env)
        self.enter_region(kind, label, node)
        # a static loop's body runs again with what it assigned; a fan-out's
        # is built once, as the template of every element
        for _ in range(1 if kind == "fanout" else 3):
            entry = merge(before, self.env)
            self.env = dict(entry)
            start()
            self.block(node.body)
            if merge(entry, self.env) == entry:
                break
        self.leave_region()
        self.env = merge(before, self.env)
        if node.orelse is not None:
            self.block(node.orelse.body)

    def statement_With(self, node: cst.With) -> None:
        waited = frozenset()
        for item in node.items:
            call = item.item
            if (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Name)
                and self.namespace.get(call.func.value) is _after()
            ):
                for arg in call.args:
                    waited |= self.materialize(self.value(arg.value), arg.value)
            else:
                self.value(call)
        if waited:
            self.after_stack.append(waited)
            self.enter_region("after", "with %s" % self.label(node.items[0].item), node)
        self.block(node.body)
        if waited:
            self.leave_region()
            self.after_stack.pop()

    def statement_Try(self, node: cst.Try) -> None:
        self.enter_region("try", "try", node)
        before = len(self.structure.nodes)
        self.block(node.body)
        self.leave_region()
        for task in self.structure.nodes[before:]:
            if task.kind == "task":
                self.report(
                    self.node_cst[task.id],
                    "%s is called inside try/except; the job runs later on"
                    " a worker, so except cannot catch its failure" % task.label,
                    "move the task call out of the try block",
                )
        for handler in node.handlers:
            self.block(handler.body)
        for extra in (node.orelse, node.finalbody):
            if extra is not None:
                self.block(extra.body)

    def statement_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.local_functions.add(node.name.value)
        saved = dict(self.env)
        for param in _all_params(node.params):
            self.env.pop(param.name.value, None)
        self.enter_region("function", "def %s(...)" % node.name.value, node)
        self.function_depth += 1
        self.block(node.body)
        self.function_depth -= 1
        self.leave_region()
        self.env = saved

    def statement_Match(self, node: cst.Match) -> None:
        if self.value(node.subject).is_result:
            self.refuse_deferred(node.subject, "`match`")
        before, merged = dict(self.env), dict(self.env)
        for case in node.cases:
            self.env = dict(before)
            self.enter_region("case", "case %s" % self.label(case.pattern), case)
            self.block(case.body)
            self.leave_region()
            merged = merge(merged, self.env)
        self.env = merged


def _after():
    from .graph import after

    return after


def _paired(node: cst.Assign) -> list | None:
    """``a, b = x, y``: the targets paired with the values, when both sides
    are displays of the same length without a starred item."""
    if len(node.targets) != 1:
        return None
    target, value = node.targets[0].target, node.value
    kinds = (cst.Tuple, cst.List)
    if not (isinstance(target, kinds) and isinstance(value, kinds)):
        return None
    if len(target.elements) != len(value.elements):
        return None
    if any(
        isinstance(e, cst.StarredElement) for e in (*target.elements, *value.elements)
    ):
        return None
    return [(t.value, v.value) for t, v in zip(target.elements, value.elements)]
