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
from dataclasses import dataclass, field

import libcst as cst

from ..evaluator import METHOD_NAMES, MUTATING_METHODS, SAFE_BUILTINS
from ..tasks import did_you_mean
from .branches import chain_escape
from .diagnostics import Diagnostic
from .source import ParsedFlow

_STORING_METHODS = frozenset({"append", "insert", "extend", "update", "setdefault"})
_STRUCTURAL = frozenset(
    {"len", "list", "tuple", "dict", "zip", "enumerate", "reversed"}
)
_LABEL_WIDTH = 60


@dataclass
class Node:
    id: str
    kind: str  # "task", "expression" or "return"
    label: str
    line: int
    column: int
    region: str | None
    elf_uid: str | None = None
    elf_class: str | None = None
    task: str | None = None
    guard: str | None = None  # why the job may be skipped, when it may


@dataclass
class Edge:
    source: str
    target: str
    key: str | None = None
    parameter: str | None = None
    kind: str = "data"  # "data" or "after"

    def label(self) -> str:
        parts = []
        if self.key is not None:
            parts.append("[%r]" % self.key)
        if self.parameter:
            parts.append(self.parameter)
        if self.kind == "after":
            parts.append("after")
        return " → ".join(parts)


@dataclass
class Region:
    id: str
    # "loop", "condition", "else" (decided when the flow is called), "guarded",
    # "guarded_else" (decided by a task result), "after", "try", "function",
    # "case"
    kind: str
    label: str
    line: int
    parent: str | None


@dataclass
class FlowStructure:
    name: str
    file: str
    line: int
    parameters: list[str]
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


@dataclass(frozen=True)
class Flowing:
    """What an expression's value may come from.

    ``compound``: computed from its sources (an expression node once handed
    on); ``container``: a static list or dict whose items may be results.
    """

    sources: frozenset = frozenset()
    compound: bool = False
    container: bool = False

    @property
    def deferred(self) -> bool:
        return bool(self.sources)

    @property
    def is_result(self) -> bool:
        """A value known only at run time (not a container that holds some)."""
        return self.deferred and not self.container

    def union(self, other: Flowing) -> Flowing:
        return Flowing(self.sources | other.sources, True)

    def merge(self, other: Flowing) -> Flowing:
        return Flowing(
            self.sources | other.sources,
            self.compound or other.compound,
            self.container and other.container,
        )


STATIC = Flowing()


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


class _Analyser:
    """Walks statements in order, tracking which nodes each name comes from."""

    def __init__(self, parsed: ParsedFlow, structure: FlowStructure, namespace):
        self.parsed = parsed
        self.structure = structure
        self.namespace = namespace
        self.env: dict[str, Flowing] = {}
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
        node_id = "%s%d" % ({"task": "j", "expression": "e"}[kind], self.counts[kind])
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

    def enclosing_guard(self) -> str | None:
        """Why a job created here may be skipped, if a branch on a task result
        encloses it."""
        regions = {r.id: r for r in self.structure.regions}
        for region_id in reversed(self.region_stack):
            region = regions.get(region_id)
            if region is not None and region.kind in ("guarded", "guarded_else"):
                return (
                    "runs only when the task result takes this branch (%s,"
                    " line %d)" % (region.label, region.line)
                )
        return None

    def leave_region(self) -> None:
        self.region_stack.pop()

    # -- values -----------------------------------------------------------------

    def materialize(self, flowing: Flowing, node: cst.CSTNode) -> frozenset:
        """Sources of a value handed on: computed values become expression nodes."""
        if not flowing.compound or not flowing.deferred or flowing.container:
            return flowing.sources
        expression = self.add_node(node, "expression")
        for source in _ordered(flowing.sources):
            self.add_edge(source, expression)
        return frozenset({(expression, None)})

    def value(self, node: cst.BaseExpression) -> Flowing:
        handler = getattr(self, "value_" + type(node).__name__, None)
        if handler is not None:
            return handler(node)
        return self.combined(_sub_expressions(node))

    def combined(self, expressions) -> Flowing:
        result = STATIC
        for expression in expressions:
            result = result.union(self.value(expression))
        return result if result.deferred else STATIC

    def value_Name(self, node: cst.Name) -> Flowing:
        flowing = self.env.get(node.value, STATIC)
        return Flowing(flowing.sources, False, flowing.container)

    def value_BinaryOperation(self, node: cst.BinaryOperation) -> Flowing:
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(node.operator, cst.MatrixMultiply) and (
            left.deferred or right.deferred
        ):
            self.report(node, "the operator @ is not supported on task results")
        joins = isinstance(node.operator, (cst.Add, cst.Multiply))
        if (
            joins
            and (left.container or right.container)
            and not (left.is_result or right.is_result)
        ):
            return Flowing(left.sources | right.sources, False, True)
        combined = left.union(right)
        return combined if combined.deferred else STATIC

    def value_BooleanOperation(self, node: cst.BooleanOperation) -> Flowing:
        left = self.value(node.left)
        where = "the right operand of `%s`" % (
            "and" if isinstance(node.operator, cst.And) else "or"
        )
        combined = left.union(self.guarded(node.right, left.is_result, where))
        return combined if combined.deferred else STATIC

    def value_IfExp(self, node: cst.IfExp) -> Flowing:
        test = self.value(node.test)
        where = "a branch of a conditional expression"
        combined = test.union(self.guarded(node.body, test.is_result, where))
        combined = combined.union(self.guarded(node.orelse, test.is_result, where))
        return combined if combined.deferred else STATIC

    def guarded(self, expression, conditional: bool, where: str) -> Flowing:
        """Evaluate an operand that runs only when a condition holds: the
        tasks it calls are guarded when that condition is a task result."""
        before = len(self.structure.nodes)
        value = self.value(expression)
        if conditional:
            for node in self.structure.nodes[before:]:
                if node.kind == "task" and node.guard is None:
                    node.guard = "runs only when %s selects it" % where
        return value

    def value_Lambda(self, node) -> Flowing:
        return STATIC

    def value_Attribute(self, node: cst.Attribute) -> Flowing:
        base = self.value(node.value)
        if (
            base.deferred
            and not base.compound
            and not base.container
            and all(key is None for _, key in base.sources)
        ):
            self.report(
                node,
                "a task result has no attribute %r; its values are"
                " read by key" % node.attr.value,
                "write result[%r]" % node.attr.value,
            )
        return Flowing(base.sources, True) if base.is_result else STATIC

    def value_Subscript(self, node: cst.Subscript) -> Flowing:
        base = self.value(node.value)
        key = _constant_key(node)
        if base.container:
            return Flowing(base.sources)
        whole = [s for s in base.sources if s[1] is None and s[0] in self.task_specs]
        if (
            key is not None
            and base.deferred
            and not base.compound
            and len(whole) == len(base.sources)
        ):
            for source in whole:
                self.check_key(node, source[0], key)
            return Flowing(frozenset((s[0], key) for s in whole))
        slices = [e.slice for e in node.slice]
        parts = [base] + [self.combined(_sub_expressions(s)) for s in slices]
        result = STATIC
        for part in parts:
            result = result.union(part)
        return result if result.deferred else STATIC

    def _displayed(self, elements) -> Flowing:
        sources = frozenset()
        for element in elements:
            value = element.value
            sources |= self.materialize(self.value(value), value)
        return Flowing(sources, container=True)

    def value_List(self, node) -> Flowing:
        return self._displayed(node.elements)

    def value_Tuple(self, node) -> Flowing:
        return self._displayed(node.elements)

    def value_Set(self, node) -> Flowing:
        for element in node.elements:
            if self.value(element.value).deferred:
                self.refuse_deferred(element.value, "a set member")
        return self._displayed(node.elements)

    def value_Dict(self, node: cst.Dict) -> Flowing:
        values = self._displayed(node.elements)
        keys = self.combined(
            e.key for e in node.elements if isinstance(e, cst.DictElement)
        )
        return values.union(keys) if keys.is_result else values

    def _comprehension(self, node, elements) -> Flowing:
        saved = dict(self.env)
        clause = node.for_in
        while clause is not None:
            iterated = self.value(clause.iter)
            if iterated.is_result:
                self.refuse_deferred(clause.iter, "`for`")
            self.bind(clause.target, Flowing(iterated.sources))
            for condition in clause.ifs:
                self.test(condition.test, "if")
            clause = clause.inner_for_in
        result = Flowing()
        for element in elements:
            result = Flowing(
                result.sources | self.materialize(self.value(element), element),
                False,
                True,
            )
        self.env = saved
        return result

    def value_ListComp(self, node) -> Flowing:
        return self._comprehension(node, [node.elt])

    def value_SetComp(self, node) -> Flowing:
        return self._comprehension(node, [node.elt])

    def value_GeneratorExp(self, node) -> Flowing:
        return self._comprehension(node, [node.elt])

    def value_DictComp(self, node) -> Flowing:
        return self._comprehension(node, [node.key, node.value])

    # -- calls ------------------------------------------------------------------

    def value_Call(self, node: cst.Call) -> Flowing:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value.startswith("task_"):
            return self.task_call(node)
        if isinstance(func, cst.Attribute):
            return self.method_call(node, func)
        if isinstance(func, cst.Name):
            return self.function_call(node, func.value)
        arguments = self.combined(arg.value for arg in node.args)
        return arguments.union(self.value(func)) if arguments.deferred else STATIC

    def function_call(self, node: cst.Call, name: str) -> Flowing:
        values = [self.value(arg.value) for arg in node.args]
        function = self.namespace.get(name)
        if (
            name not in self.local_functions
            and SAFE_BUILTINS.get(name) is function
            and name in _STRUCTURAL
        ):
            if not any(value.is_result for value in values):
                return _structural(name, values)
        if getattr(function, "__blumycelium_flow__", False):
            self.report(node, "calling another flow from a flow is not supported yet")
        arguments = STATIC
        for value in values:
            arguments = arguments.union(value)
        if not arguments.deferred:
            return STATIC
        if name in self.local_functions or name == "after":
            return Flowing(arguments.sources)
        if function is builtins.print:
            self.report(
                node,
                "print() runs at submit time and cannot show a value"
                " known only when a job has run",
                "pass the value to a task that prints it",
            )
        elif function is builtins.bool:
            self.refuse_deferred(node, "bool()")
        elif (
            function is not None
            and SAFE_BUILTINS.get(name) is not function
            and callable(function)
        ):
            self.report(
                node,
                "%s() is ordinary code run at submit time; calling it"
                " with a value known only when a job has run needs that"
                " value now" % name,
                "make it a task of an elf, or write the computation in"
                " the flow itself, where it becomes an expression node",
            )
        return arguments

    def method_call(self, node: cst.Call, func: cst.Attribute) -> Flowing:
        base = self.value(func.value)
        method = func.attr.value
        if base.is_result:
            self.check_method(func, method)
            return base.union(self.combined(arg.value for arg in node.args))
        if method in _STORING_METHODS and isinstance(func.value, cst.Name):
            added = frozenset()
            for arg in node.args:
                added |= self.materialize(self.value(arg.value), arg.value)
            name = func.value.value
            held = self.env.get(name, STATIC).sources
            self.env[name] = Flowing(held | added, False, True)
            return STATIC
        if method == "copy" and base.container:
            return base
        arguments = self.combined(arg.value for arg in node.args)
        return arguments if arguments.deferred else STATIC

    def check_method(self, func: cst.Attribute, method: str) -> None:
        if method in MUTATING_METHODS:
            self.report(
                func,
                "%s() would change a task result, which is a"
                " read-only snapshot" % method,
                "build a new value instead, e.g. r['items'] + [x]",
            )
        elif method not in METHOD_NAMES:
            self.report(
                func,
                "%r is not a method expression nodes allow on JSON"
                " values%s" % (method, did_you_mean(method, METHOD_NAMES)),
                "compute it inside a task",
            )

    def task_call(self, node: cst.Call) -> Flowing:
        func = node.func
        task = func.attr.value
        uid, owner = self.resolve_elf(func.value)
        spec = self.task_spec(node, owner, task)
        names = self.parameter_names(node, spec)
        inputs = [
            self.materialize(self.value(arg.value), arg.value) for arg in node.args
        ]
        job = self.add_node(
            node,
            "task",
            elf_uid=uid,
            elf_class=owner.__name__ if owner else None,
            task=task,
        )
        self.task_specs.setdefault(job, spec)
        guard = self.enclosing_guard()
        if guard is not None:
            self.structure.nodes[-1].guard = guard
        for sources, parameter in zip(inputs, names):
            for source in _ordered(sources):
                self.add_edge(source, job, parameter)
        for waited in self.after_stack:
            for source in _ordered(waited):
                self.add_edge(source, job, kind="after")
        return Flowing(frozenset({(job, None)}))

    def task_spec(self, node: cst.Call, owner, task: str):
        if owner is None:
            return None
        spec = owner.tasks().get(task)
        if spec is None:
            self.report(
                node.func,
                "%s has no task %s%s"
                % (owner.__name__, task, did_you_mean(task, owner.tasks())),
            )
        return spec

    def parameter_names(self, node: cst.Call, spec) -> list:
        names = []
        for position, arg in enumerate(node.args):
            if arg.keyword is not None:
                names.append(arg.keyword.value)
            elif spec is not None and arg.star == "" and position < len(spec.names):
                names.append(spec.names[position])
            else:
                names.append(None)
        if spec is not None and not any(arg.star for arg in node.args):
            self.check_call(node, spec)
        return names

    def check_call(self, node: cst.Call, spec) -> None:
        positional = tuple(None for arg in node.args if arg.keyword is None)
        keywords = {arg.keyword.value: None for arg in node.args if arg.keyword}
        try:
            spec.bind(positional, keywords)
        except TypeError as error:
            self.report(node, str(error))

    def check_key(self, node: cst.Subscript, job: str, key: str) -> None:
        spec = self.task_specs.get(job)
        if spec is None:
            return
        try:
            spec.check_result_key(key)
        except TypeError as error:
            self.report(node, str(error))

    def resolve_elf(self, expression: cst.BaseExpression) -> tuple:
        if not isinstance(expression, cst.Name):
            return None, None
        name = expression.value
        if name in self.local_elves:
            return self.local_elves[name]
        value = self.namespace.get(name)
        owner = type(value)
        if hasattr(owner, "__blumycelium_tasks__") and hasattr(value, "uid"):
            return value.uid, owner
        return None, None

    def refuse_deferred(self, node: cst.CSTNode, need: str) -> None:
        self.report(
            node,
            "%s needs the value of `%s` at submit time, but it is"
            " known only when a job has run" % (need, self.label(node)),
            "pass the value to a task and decide there; branching and"
            " looping on results are planned (guarded jobs and run-time"
            " fan-out)",
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
        value = self.value(node.value)
        flowing = Flowing(self.materialize(value, node.value), False, value.container)
        for target in node.targets:
            self.assign(target.target, flowing, node)

    def statement_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            value = self.value(node.value)
            flowing = Flowing(
                self.materialize(value, node.value), False, value.container
            )
            self.assign(node.target, flowing, node)

    def statement_AugAssign(self, node: cst.AugAssign) -> None:
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
        for source in _ordered(sources):
            self.add_edge(source, "return")

    def assign(self, target, flowing: Flowing, statement) -> None:
        if isinstance(target, cst.Name):
            self.env[target.value] = flowing
        elif isinstance(target, (cst.Tuple, cst.List)):
            if flowing.is_result:
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
        for name in _target_names(target):
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
        self.env = _merge(after_body, self.env)

    def branch(self, orelse, guarded: bool) -> None:
        if isinstance(orelse, cst.If):
            self.statement_If(orelse, guarded)
            return
        self.enter_region("guarded_else" if guarded else "else", "else", orelse)
        self.block(orelse.body)
        self.leave_region()

    def statement_For(self, node: cst.For) -> None:
        iterated = self.value(node.iter)
        if iterated.is_result:
            self.refuse_deferred(node.iter, "`for`")
        label = "for %s in %s" % (self.label(node.target), self.label(node.iter))
        self.loop(
            node, label, lambda: self.bind(node.target, Flowing(iterated.sources))
        )

    def statement_While(self, node: cst.While) -> None:
        self.loop(
            node,
            "while %s" % self.label(node.test),
            lambda: self.test(node.test, "while"),
        )

    def loop(self, node, label: str, start) -> None:
        before = dict(self.env)
        self.enter_region("loop", label, node)
        for _ in range(3):
            entry = _merge(before, self.env)
            self.env = dict(entry)
            start()
            self.block(node.body)
            if _merge(entry, self.env) == entry:
                break
        self.leave_region()
        self.env = _merge(before, self.env)
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
            merged = _merge(merged, self.env)
        self.env = merged


def _after():
    from .graph import after

    return after


def _ordered(sources) -> list:
    """Sources in a stable order (node kind and number, then key)."""
    return sorted(
        sources,
        key=lambda s: (
            s[0][0],
            int(s[0][1:] or 0) if s[0][1:].isdigit() else 0,
            s[1] or "",
        ),
    )


def _merge(first: dict, second: dict) -> dict:
    merged = dict(first)
    for name, flowing in second.items():
        merged[name] = merged[name].merge(flowing) if name in merged else flowing
    return merged


def _structural(name: str, values: list) -> Flowing:
    """Builtins that rearrange a container without reading the results in it."""
    if name == "len":
        return STATIC
    sources = frozenset()
    for value in values:
        sources |= value.sources
    return Flowing(sources, False, True) if sources else STATIC


def _target_names(target) -> list:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [
            name for element in target.elements for name in _target_names(element.value)
        ]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _constant_key(node: cst.Subscript):
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    value = node.slice[0].slice.value
    if isinstance(value, (cst.SimpleString, cst.ConcatenatedString)):
        key = value.evaluated_value
        return key if isinstance(key, str) else None
    return None


def _sub_expressions(node: cst.CSTNode) -> list:
    """The expressions directly inside ``node`` (through Arg, Element and so on)."""
    found = []
    for child in node.children:
        if isinstance(child, cst.BaseExpression):
            found.append(child)
        elif not isinstance(child, (cst.BaseParenthesizableWhitespace, cst.BaseSuite)):
            found.extend(_sub_expressions(child))
    return found
