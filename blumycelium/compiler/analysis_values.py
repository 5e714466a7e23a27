"""The preview's analysis of expressions and calls (see ``analysis.py``)."""

from __future__ import annotations

import ast
import builtins
import functools
import inspect

import libcst as cst

from ..evaluator import METHOD_NAMES, MUTATING_METHODS, SAFE_BUILTINS
from ..expressions import helper_info
from ..tasks import did_you_mean
from .branches import kept_generator_refusal, one_branch_refusal
from .cstscan import loop_target_names
from .structure import (
    STATIC,
    Flowing,
    constant_key,
    ordered,
    structural,
    sub_expressions,
)

_STORING_METHODS = frozenset({"append", "insert", "extend", "update", "setdefault"})
_STRUCTURAL = frozenset(
    {"len", "list", "tuple", "dict", "zip", "enumerate", "reversed"}
)


class ValueAnalysis:
    """What each expression's value may come from; task calls become nodes."""

    def materialize(self, flowing: Flowing, node: cst.CSTNode) -> frozenset:
        """Sources of a value handed on: computed values become expression nodes."""
        if not flowing.compound or not flowing.deferred or flowing.container:
            return flowing.sources
        expression = self.add_node(node, "expression")
        for source in ordered(flowing.sources):
            self.add_edge(source, expression)
        return frozenset({(expression, None)})

    def value(self, node: cst.BaseExpression) -> Flowing:
        handler = getattr(self, "value_" + type(node).__name__, None)
        if handler is not None:
            return handler(node)
        return self.combined(sub_expressions(node))

    def combined(self, expressions) -> Flowing:
        result = STATIC
        for expression in expressions:
            result = result.union(self.value(expression))
        return result if result.deferred else STATIC

    def value_Name(self, node: cst.Name) -> Flowing:
        if node.value in self.one_branch:
            self.report(
                node, *one_branch_refusal(node.value, *self.one_branch[node.value])
            )
        self.check_defined(node)
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
        key = constant_key(node)
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
        parts = [base] + [self.combined(sub_expressions(s)) for s in slices]
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
        entered = len(self.region_stack)
        clause = node.for_in
        while clause is not None:
            iterated = self.value(clause.iter)
            if iterated.is_result:
                self.fan_out_clause(node, clause)
            self.bind(clause.target, Flowing(iterated.sources))
            for condition in clause.ifs:
                if self.value(condition.test).is_result:
                    label = "if %s" % self.label(condition.test)
                    self.enter_region("guarded", label, condition)
            clause = clause.inner_for_in
        sources = frozenset()
        for element in elements:
            sources |= self.materialize(self.value(element), element)
        kinds = {r.id: r.kind for r in self.structure.regions}
        fanned_out = "fanout" in {kinds[r] for r in self.region_stack[entered:]}
        del self.region_stack[entered:]
        self.env = saved
        # over a task result, the list exists only once the run has built it
        return Flowing(sources, fanned_out, not fanned_out)

    def fan_out_clause(self, node, clause: cst.CompFor) -> None:
        """A comprehension clause over a task result: a fan-out region, or
        the reason it cannot be one."""
        if isinstance(node, cst.SetComp):
            self.refuse_fan_out(clause.iter, "comprehension")
        elif loop_target_names(clause.target) is None:
            self.refuse_fan_out(clause.iter, "target")
        else:
            label = "for %s in %s" % (
                self.label(clause.target),
                self.label(clause.iter),
            )
            self.enter_region("fanout", label, clause)

    def value_ListComp(self, node) -> Flowing:
        return self._comprehension(node, [node.elt])

    def value_SetComp(self, node) -> Flowing:
        return self._comprehension(node, [node.elt])

    def value_GeneratorExp(self, node) -> Flowing:
        flowing = self._comprehension(node, [node.elt])
        if flowing.is_result and id(node) not in self.consumed_generators:
            self.report(node, *kept_generator_refusal("a task result"))
        return flowing

    def value_DictComp(self, node) -> Flowing:
        return self._comprehension(node, [node.key, node.value])

    # -- calls ------------------------------------------------------------------

    def value_Call(self, node: cst.Call) -> Flowing:
        for arg in node.args:  # a generator given straight to a call: consumed
            if isinstance(arg.value, cst.GeneratorExp):
                self.consumed_generators.add(id(arg.value))
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value.startswith("task_"):
            return self.task_call(node)
        if isinstance(func, cst.Attribute):
            self.check_elf_attribute(func)
            return self.method_call(node, func)
        if isinstance(func, cst.Name):
            return self.function_call(node, func.value)
        arguments = self.combined(arg.value for arg in node.args)
        return arguments.union(self.value(func)) if arguments.deferred else STATIC

    def function_call(self, node: cst.Call, name: str) -> Flowing:
        values = [self.value(arg.value) for arg in node.args]
        self.check_defined(node.func)
        function = self.module_value(node.func)
        if (
            name not in self.local_functions
            and SAFE_BUILTINS.get(name) is function
            and name in _STRUCTURAL
        ):
            if not any(value.is_result for value in values):
                return structural(name, values)
        if getattr(function, "__blumycelium_flow__", False):
            return self.flow_call(node, name, function, values)
        if function in (next, iter) and values and not any(v.is_result for v in values):
            # the items of a generator the flow made, handed on untouched
            items = frozenset().union(*(v.sources for v in values))
            return Flowing(items) if function is next else values[0]
        arguments = STATIC
        for value in values:
            arguments = arguments.union(value)
        if not arguments.deferred:
            return STATIC
        if name in self.local_functions or name == "after":
            return Flowing(arguments.sources)
        if helper_info(function) is not None:
            return self.helper_call(node, name, function, arguments)
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

    def helper_call(self, node, name: str, function, arguments) -> Flowing:
        """An expression helper applied to task results: an expression node."""
        if helper_info(function).module == "__main__":
            self.report(
                node,
                "expression helper %s is defined in the script being run"
                " (__main__), which a worker cannot import" % name,
                "define the helper in a module the flow imports",
            )
        return Flowing(arguments.sources, True)

    def flow_call(self, node: cst.Call, name: str, flow, values) -> Flowing:
        """Another flow, built into this one's graph when it is called: one
        node here (its own preview shows its jobs)."""
        try:
            signature = inspect.signature(flow)
        except (TypeError, ValueError):
            signature = None
        parameters = list(signature.parameters) if signature else []
        self.check_flow_arguments(node, name, signature)
        flow_node = self.add_node(node, "flow", task=name)
        guard = self.enclosing_guard()
        if guard is not None:
            self.structure.nodes[-1].guard = guard
        for position, (arg, value) in enumerate(zip(node.args, values)):
            if arg.keyword is not None:
                parameter = arg.keyword.value
            elif not arg.star and position < len(parameters):
                parameter = parameters[position]
            else:
                parameter = None
            for source in ordered(self.materialize(value, arg.value)):
                self.add_edge(source, flow_node, parameter)
        return Flowing(frozenset({(flow_node, None)}))

    def check_flow_arguments(self, node: cst.Call, name: str, signature) -> None:
        """Report a call of another flow its signature cannot take."""
        if signature is None or any(arg.star for arg in node.args):
            return
        positional = [object() for arg in node.args if arg.keyword is None]
        keywords = {arg.keyword.value: object() for arg in node.args if arg.keyword}
        try:
            signature.bind(*positional, **keywords)
        except TypeError as error:
            self.report(
                node,
                "flow %s() cannot take these arguments: %s" % (name, error),
                "call it as its def says: %s%s" % (name, signature),
            )

    def method_call(self, node: cst.Call, func: cst.Attribute) -> Flowing:
        base = self.value(func.value)
        method = func.attr.value
        gathered = self.grows_gathered(func, method)
        if base.is_result and not gathered:
            self.check_method(func, method)
            return base.union(self.combined(arg.value for arg in node.args))
        through = not isinstance(func.value, cst.Name)  # lst[0].append(x)
        if method in MUTATING_METHODS and (method not in _STORING_METHODS or through):
            self.check_in_place(func)  # x.pop(): x is changed
        if method in _STORING_METHODS and isinstance(func.value, cst.Name):
            added = frozenset()
            for arg in node.args:
                added |= self.materialize(self.value(arg.value), arg.value)
            name = func.value.value
            held = self.env.get(name, STATIC).sources
            # a list the run gathered stays one known at run time
            self.env[name] = Flowing(held | added, gathered, not gathered)
            return STATIC
        if method == "copy" and base.container:
            return base
        arguments = self.combined(arg.value for arg in node.args)
        return arguments if arguments.deferred else STATIC

    def grows_gathered(self, func: cst.Attribute, method: str) -> bool:
        """``out.append(x)`` on a list a fan-out grew: the run makes a new
        list of it and the item (control.list_append)."""
        return (
            method in ("append", "extend")
            and isinstance(func.value, cst.Name)
            and func.value.value in self.gathered
        )

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

    def check_elf_attribute(self, func: cst.Attribute) -> None:
        """Report a method an elf does not have (a misspelt task_ prefix)."""
        _, owner = self.resolve_elf(func.value)
        name = func.attr.value
        elf = self.module_value(func.value)
        if owner is not None and not hasattr(elf or owner, name):
            self.report(
                func,
                "%s has no attribute %s%s"
                % (owner.__name__, name, did_you_mean(name, owner.tasks())),
            )

    def check_defined(self, expression: cst.BaseExpression) -> None:
        """Report a name the flow neither assigns nor can find (the flow would
        raise NameError when called)."""
        if not isinstance(expression, cst.Name):
            return
        name = expression.value
        known = (self.env, self.local_elves, self.local_functions, self.namespace)
        if any(name in names for names in known) or hasattr(builtins, name):
            return
        bound = bound_names(self.parsed.source.text)
        if name in bound:
            return  # assigned somewhere in the flow, maybe later in a loop
        candidates = [*bound, *(n for names in known for n in names)]
        self.report(
            expression,
            "name %r is not defined%s" % (name, did_you_mean(name, candidates)),
            "define or import it before the flow is called",
        )

    def task_call(self, node: cst.Call) -> Flowing:
        func = node.func
        task = func.attr.value
        self.check_defined(func.value)
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
            for source in ordered(sources):
                self.add_edge(source, job, parameter)
        for waited in self.after_stack:
            for source in ordered(waited):
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
            self.check_call(node, spec, names)
        return names

    def check_call(self, node: cst.Call, spec, names: list) -> None:
        positional = tuple(None for arg in node.args if arg.keyword is None)
        keywords = {arg.keyword.value: None for arg in node.args if arg.keyword}
        try:
            spec.bind(positional, keywords)
        except TypeError as error:
            self.report(node, str(error))
            return
        for arg, name in zip(node.args, names):
            self.check_literal(arg, name or "", spec)

    def check_literal(self, arg: cst.Arg, name: str, spec) -> None:
        """A literal argument (``42``, ``"x"``, ``[1, 2]``) against the
        parameter's annotation, as submission checks it."""
        if not name or arg.star:
            return
        try:
            value = ast.literal_eval(self.parsed.module.code_for_node(arg.value))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return
        try:
            spec.check_argument(name, value)
        except TypeError as error:
            self.report(arg.value, str(error))

    def check_key(self, node: cst.Subscript, job: str, key: str) -> None:
        spec = self.task_specs.get(job)
        if spec is None:
            return
        try:
            spec.check_result_key(key)
        except TypeError as error:
            self.report(node, str(error))

    def module_value(self, expression: cst.BaseExpression):
        """What a name means in the flow's module and closure, when the flow
        does not bind it itself (a parameter or an assignment shadows it)."""
        if not isinstance(expression, cst.Name):
            return None
        name = expression.value
        if name in bound_names(self.parsed.source.text):
            return None
        return self.namespace.get(name)

    def resolve_elf(self, expression: cst.BaseExpression) -> tuple:
        if not isinstance(expression, cst.Name):
            return None, None
        if expression.value in self.local_elves:
            return self.local_elves[expression.value]
        value = self.module_value(expression)
        owner = type(value)
        if hasattr(owner, "__blumycelium_tasks__") and hasattr(value, "uid"):
            return value.uid, owner
        return None, None


@functools.lru_cache(maxsize=64)
def bound_names(text: str) -> frozenset:
    """Every name a function's text binds: assignments, parameters, loop and
    with targets, imports, handlers and patterns, global and nonlocal
    declarations."""
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping):
            names.add(node.rest)
    names.discard(None)
    return frozenset(names)
