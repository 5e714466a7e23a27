"""Random flows for the eager oracle (see test_oracle.py).

:func:`flow_source` draws the body of a flow from a small grammar of what
flows do: task calls of two elves, expressions over their results, static
and deferred conditions (``if``, conditional expressions, ``and``/``or``),
static loops, loops and comprehensions over task results (nested too), and
lists grown in them. Each drawn program either runs the same compiled and
eagerly, or is one the compiler documents as refused (``expect_error``).

:func:`run_in_program_order` runs a submitted run with one in-process worker
per elf, always taking the ready job that comes first in program order
(across elves), so that each elf's tasks are called in the order the eager
function calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

PRELUDE = """\
from blumycelium import Mycelium, MachineElf
myc = Mycelium(URL)
CALLS = []


class Num(MachineElf):
    def task_add(self, a: int, b: int = 0) -> {"sum": int}:
        CALLS.append((self.uid, "add", a, b))
        return {"sum": (a + b) % 1000}

    def task_range(self, n: int) -> ("items",):
        CALLS.append((self.uid, "range", n))
        return {"items": list(range(n % 4))}

    def task_pair(self, a: int) -> ("low", "high"):
        CALLS.append((self.uid, "pair", a))
        return {"low": a % 10, "high": a // 10 % 100}

    def task_note(self, a) -> None:
        CALLS.append((self.uid, "note", a))


left = Num("left", myc)
right = Num("right", myc)


@myc.flow
def flow(p):
"""


@dataclass
class Scope:
    """The names a point of the program may read."""

    ints: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    deferred: set[str] = field(default_factory=set)

    def child(self) -> Scope:
        return Scope(list(self.ints), list(self.lists), set(self.deferred))


@dataclass
class Program:
    lines: list[str] = field(default_factory=list)
    counter: int = 0
    expect_error: str | None = None
    returned: list[str] = field(default_factory=list)

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def source(self, url: str) -> str:
        body = "\n".join("    " + line for line in self.lines) or "    pass"
        back = "    return (%s)" % "".join(name + ", " for name in self.returned)
        return PRELUDE.replace("URL", repr(url)) + body + "\n" + back + "\n"


class Drawer:
    """Draws one program with hypothesis' ``data``."""

    def __init__(self, data, budget: int = 12):
        self.data = data
        self.program = Program()
        self.budget = budget

    def draw(self, strategy):
        return self.data.draw(strategy)

    # -- expressions --------------------------------------------------------------

    def int_expr(self, scope: Scope, depth: int = 0) -> tuple[str, bool]:
        """An int expression, and whether it depends on a task result."""
        choices = ["literal", "param"] + (["name"] * 3 if scope.ints else [])
        if depth < 2:
            choices += ["binop", "max", "ifexp", "task"]
            if scope.lists:
                choices += ["len", "sum"]
        kind = self.draw(st.sampled_from(choices))
        if kind == "literal":
            return str(self.draw(st.integers(0, 9))), False
        if kind == "param":
            return "p", False
        if kind == "name":
            name = self.draw(st.sampled_from(scope.ints))
            return name, name in scope.deferred
        if kind in ("len", "sum"):
            name = self.draw(st.sampled_from(scope.lists))
            text = "len(%s)" % name if kind == "len" else "sum(%s) %% 97" % name
            return text, name in scope.deferred
        if kind == "task":
            return self.task_value(scope, depth + 1)
        a, da = self.int_expr(scope, depth + 1)
        b, db = self.int_expr(scope, depth + 1)
        if kind == "binop":
            op = self.draw(st.sampled_from(["+", "-", "*"]))
            return "((%s %s %s) %% 97)" % (a, op, b), da or db
        if kind == "max":
            return "max(%s, %s)" % (a, b), da or db
        test, dt = self.condition(scope, depth + 1)
        return "(%s if %s else %s)" % (a, test, b), da or db or dt

    def condition(self, scope: Scope, depth: int = 0) -> tuple[str, bool]:
        a, da = self.int_expr(scope, depth + 1)
        kind = self.draw(st.sampled_from(["compare", "even", "and", "or", "not"]))
        if kind == "even" or depth >= 2:
            return "%s %% 2 == 0" % a, da
        if kind == "compare":
            b, db = self.int_expr(scope, depth + 1)
            op = self.draw(st.sampled_from(["<", "<=", "==", "!=", ">"]))
            return "%s %s %s" % (a, op, b), da or db
        if kind == "not":
            inner, di = self.condition(scope, depth + 1)
            return "not (%s)" % inner, di
        left, dl = self.condition(scope, depth + 1)
        right, dr = self.condition(scope, depth + 1)
        return "(%s %s %s)" % (left, kind, right), dl or dr

    def elf(self) -> str:
        return self.draw(st.sampled_from(["left", "right"]))

    def task_value(self, scope: Scope, depth: int = 1) -> tuple[str, bool]:
        a, _ = self.int_expr(scope, depth + 1)
        if self.draw(st.booleans()):
            return '%s.task_pair(%s)["%s"]' % (
                self.elf(),
                a,
                self.draw(st.sampled_from(["low", "high"])),
            ), True
        b, _ = self.int_expr(scope, depth + 1)
        return '%s.task_add(%s, %s)["sum"]' % (self.elf(), a, b), True

    def list_expr(self, scope: Scope) -> tuple[str, bool]:
        kind = self.draw(
            st.sampled_from(["range", "task"] + (["name"] if scope.lists else []))
        )
        if kind == "range":
            return "list(range(%d))" % self.draw(st.integers(0, 3)), False
        if kind == "name":
            name = self.draw(st.sampled_from(scope.lists))
            return name, name in scope.deferred
        a, _ = self.int_expr(scope, 2)
        return '%s.task_range(%s)["items"]' % (self.elf(), a), True

    # -- statements ---------------------------------------------------------------

    def block(self, scope: Scope, indent: int, depth: int, size: int) -> None:
        emitted = len(self.program.lines)
        for _ in range(self.draw(st.integers(1, size))):
            if self.budget <= 0:
                break
            self.budget -= 1
            self.statement(scope, indent, depth)
        if len(self.program.lines) == emitted:
            self.emit(indent, "pass")

    def emit(self, indent: int, line: str) -> None:
        self.program.lines.append("    " * indent + line)

    def bind(self, scope: Scope, name: str, deferred: bool, kind: str) -> None:
        (scope.ints if kind == "int" else scope.lists).append(name)
        if deferred:
            scope.deferred.add(name)
        else:
            scope.deferred.discard(name)

    def statement(self, scope: Scope, indent: int, depth: int) -> None:
        kinds = ["task", "task", "expr", "note", "list", "comprehension"]
        if depth < 2:
            kinds += ["if", "for", "static_for"]
        if depth == 0 and not self.program.expect_error:
            kinds += ["refused"]
        kind = self.draw(st.sampled_from(kinds))
        getattr(self, "statement_" + kind)(scope, indent, depth)

    def statement_refused(self, scope, indent, depth):
        """A construct the compiler documents as refused, on a task result."""
        value, _ = self.task_value(scope)
        kind = self.draw(st.sampled_from(["while", "break", "return"]))
        if kind == "while":
            self.emit(indent, "while %s > 1000:" % value)
            self.emit(indent + 1, "pass")
            self.program.expect_error = "`while` needs the value"
            return
        iterable = '%s.task_range(%s)["items"]' % (self.elf(), value)
        self.emit(indent, "for refused in %s:" % iterable)
        self.emit(indent + 1, "if refused > 5:")
        self.emit(indent + 2, kind + (" 1" if kind == "return" else ""))
        self.program.expect_error = "its body holds `%s`" % kind

    def statement_task(self, scope, indent, depth):
        value, deferred = self.task_value(scope)
        name = self.program.fresh("v")
        self.emit(indent, "%s = %s" % (name, value))
        self.bind(scope, name, deferred, "int")

    def statement_expr(self, scope, indent, depth):
        value, deferred = self.int_expr(scope)
        name = self.program.fresh("v")
        self.emit(indent, "%s = %s" % (name, value))
        self.bind(scope, name, deferred, "int")

    def statement_note(self, scope, indent, depth):
        value, _ = self.int_expr(scope)
        self.emit(indent, "%s.task_note(%s)" % (self.elf(), value))

    def statement_list(self, scope, indent, depth):
        value, deferred = self.list_expr(scope)
        name = self.program.fresh("L")
        self.emit(indent, "%s = %s" % (name, value))
        self.bind(scope, name, deferred, "list")

    def statement_comprehension(self, scope, indent, depth):
        iterable, deferred = self.list_expr(scope)
        inner = scope.child()
        item = self.program.fresh("x")
        self.bind(inner, item, deferred, "int")
        clause = ""
        if self.draw(st.integers(0, 3)) == 0:
            inner_iterable, inner_deferred = self.list_expr(scope)
            second = self.program.fresh("x")
            self.bind(inner, second, inner_deferred, "int")
            clause = " for %s in %s" % (second, inner_iterable)
            deferred = deferred or inner_deferred
        element, _ = self.int_expr(inner)
        d_test = False
        if self.draw(st.booleans()):
            test, d_test = self.condition(inner)
            clause += " if " + test
        name = self.program.fresh("L")
        self.emit(
            indent, "%s = [%s for %s in %s%s]" % (name, element, item, iterable, clause)
        )
        # over a static iterable, only a condition on a result makes the list
        # itself a result; deferred elements sit in a static list
        self.bind(scope, name, deferred or d_test, "list")

    def statement_if(self, scope, indent, depth):
        test, deferred = self.condition(scope)
        shared = [self.program.fresh("v") for _ in range(self.draw(st.integers(0, 2)))]
        kinds = {}
        self.emit(indent, "if %s:" % test)
        branches = ["then"]
        if self.draw(st.booleans()):
            elif_test, elif_deferred = self.condition(scope)
            deferred = deferred or elif_deferred
            branches.append("elif %s:" % elif_test)
        branches.append("else:")
        for branch in branches:
            if branch != "then":
                self.emit(indent, branch)
            inner = scope.child()
            self.block(inner, indent + 1, depth + 1, 2)
            for name in shared:
                value, d_value = self.int_expr(inner)
                self.emit(indent + 1, "%s = %s" % (name, value))
                kinds[name] = kinds.get(name, False) or d_value
        for name in shared:
            self.bind(scope, name, deferred or kinds[name], "int")

    def statement_static_for(self, scope, indent, depth):
        self.loop(
            scope, indent, depth, "range(%d)" % self.draw(st.integers(0, 3)), False
        )

    def statement_for(self, scope, indent, depth):
        iterable, deferred = self.list_expr(scope)
        self.loop(scope, indent, depth, iterable, deferred)

    def loop(self, scope, indent, depth, iterable: str, deferred: bool):
        grown = self.program.fresh("L")
        self.emit(indent, "%s = []" % grown)
        item = self.program.fresh("x")
        inner = scope.child()
        self.bind(inner, item, deferred, "int")
        if self.draw(st.booleans()):
            number = self.program.fresh("i")
            self.bind(inner, number, deferred, "int")
            item, iterable = "%s, %s" % (number, item), "enumerate(%s)" % iterable
        # only where the loop is surely built: a static `if` or loop around it
        # could leave it out, and the compiler would have nothing to refuse
        carried = (
            deferred
            and depth == 0
            and scope.ints
            and not self.program.expect_error  # the first refusal is reported
            and self.draw(st.integers(0, 9)) == 0
        )
        self.emit(indent, "for %s in %s:" % (item, iterable))
        self.block(inner, indent + 1, depth + 1, 3)
        if carried:
            name = self.draw(st.sampled_from(scope.ints))
            self.emit(indent + 1, "%s = %s + 1" % (name, name))
            self.program.expect_error = "is carried from one iteration to the next"
        value, _ = self.int_expr(inner)
        self.emit(indent + 1, "%s.append(%s)" % (grown, value))
        self.bind(scope, grown, deferred, "list")


def flow_source(data, url: str) -> Program:
    """Draw a program; its ``source(url)`` is a module defining ``flow(p)``."""
    drawer = Drawer(data)
    scope = Scope()
    drawer.block(scope, 0, 0, 6)
    names = scope.ints + scope.lists
    if names:
        count = drawer.draw(st.integers(1, min(4, len(names))))
        drawer.program.returned = names[-count:]
    return drawer.program


def run_in_program_order(mycelium, run, elves) -> None:
    """Run ``run`` to its end, one job at a time, first in program order."""
    store = mycelium.store
    workers = {elf.uid: elf.worker() for elf in elves}
    some_worker = next(iter(workers.values()))
    while True:
        while store.undecided_jobs(limit=1):
            some_worker.decide_guards()
        ready = store.list_jobs(run_id=run.id, statuses=["ready"])
        if not ready:
            return
        first = min(ready, key=lambda job: job.order)
        worker = workers.get(first.elf_uid, some_worker)
        job = store.claim_job(first.elf_uid, worker.worker_id, worker.lease)
        assert job is not None and job.id == first.id, (first, job)
        worker.run_job(job, raise_exceptions=False)
