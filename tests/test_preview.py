"""`python -m blumycelium.compile`: the structure of flows before they run."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PRELUDE, PRELUDE_LINES, ROOT


def with_prelude(path, body: str):
    """``path``, written with the standard prelude and then ``body``."""
    path.write_text(PRELUDE + body)
    return path


def compile_command(path, *args, cwd=None):
    code = (
        "import sys, runpy; sys.argv = ['blumycelium.compile'] + sys.argv[1:];"
        " runpy.run_module('blumycelium.compile', run_name='__main__');"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path), *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


FLOWS = (
    PRELUDE
    + """
@myc.flow
def report(n, text):
    parts = words.task_split(text)
    totals = []
    for i in range(n):
        r = calc.task_add(i, parts["count"])
        totals.append(r["sum"])
    if n > 3:
        calc.task_total(totals)
    with after(parts):
        shown = words.task_show(parts["words"][0].upper())
    return {"total": totals, "first": parts["words"]}
"""
)


@pytest.fixture
def flows_file(tmp_path):
    path = tmp_path / "flows.py"
    path.write_text(FLOWS)
    return path


def test_the_text_preview_shows_jobs_routing_regions_and_edges(flows_file, tmp_path):
    finished = compile_command(flows_file, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    assert out.startswith("flow report(n, text)    %s:" % flows_file)
    assert "j1   task words.task_split(text)" in out
    assert "→ elf 'words' (Words)" in out
    assert "for i in range(n):" in out and "if n > 3:" in out
    assert 'j2   task calc.task_add(i, parts["count"])' in out
    assert "← j1['count'] as b" in out
    assert "← j2['sum'] as values" in out
    assert 'e1   expr parts["words"][0].upper()' in out
    assert "(after: waits, takes no value)" in out
    assert list(tmp_path.iterdir()) == [flows_file]


def test_the_json_preview_has_the_documented_shape(flows_file):
    finished = compile_command(flows_file, "--format", "json")
    assert finished.returncode == 0, finished.stderr
    [flow] = json.loads(finished.stdout)["flows"]
    assert set(flow) == {
        "name",
        "file",
        "line",
        "parameters",
        "nodes",
        "edges",
        "regions",
        "diagnostics",
    }
    assert flow["parameters"] == ["n", "text"]
    tasks = {n["id"]: n for n in flow["nodes"] if n["kind"] == "task"}
    assert [t["task"] for t in tasks.values()] == [
        "task_split",
        "task_add",
        "task_total",
        "task_show",
    ]
    assert tasks["j2"]["region"] == "r1"
    assert {
        "source": "j1",
        "target": "j4",
        "key": None,
        "parameter": None,
        "kind": "after",
    } in flow["edges"]
    assert [r["kind"] for r in flow["regions"]] == ["loop", "condition", "after"]
    assert flow["diagnostics"] == []
    node_ids = {n["id"] for n in flow["nodes"]}
    assert all(
        e["source"] in node_ids and e["target"] in node_ids for e in flow["edges"]
    )


def test_the_dot_preview_is_valid_graphviz(flows_file, tmp_path):
    finished = compile_command(flows_file, "--format", "dot")
    assert finished.returncode == 0
    text = finished.stdout
    assert text.startswith('digraph "flow report" {') and text.rstrip().endswith("}")
    assert 'subgraph "cluster_r1"' in text and "style=dashed" in text
    assert text.count("{") == text.count("}")
    if shutil.which("dot"):
        rendered = subprocess.run(
            ["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60
        )
        assert rendered.returncode == 0, rendered.stderr


def test_the_mermaid_preview_declares_every_node_it_links(flows_file):
    import re

    finished = compile_command(flows_file, "--format", "mermaid")
    assert finished.returncode == 0
    lines = finished.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    declared = {
        m.group(1) for line in lines if (m := re.match(r"\s*(f\d+_n_\w+)[\[(]", line))
    }
    linked = set()
    for line in lines:
        if "-->" in line or "-.->" in line:
            parts = line.split()
            linked |= {parts[0], parts[-1]}
    assert linked and linked <= declared
    opened = sum(1 for x in lines if x.strip().startswith("subgraph "))
    assert opened == sum(1 for x in lines if x.strip() == "end") == 4


def test_several_flows_make_one_mermaid_document_and_a_stable_json(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(
        PRELUDE + "@myc.flow\ndef one(x):\n    calc.task_add(x)\n\n"
        "@myc.flow\ndef two(x):\n    r = calc.task_add(x)\n"
        "    calc.task_total([r['sum'], r['sum'] + 1, x])\n"
    )
    mermaid = compile_command(path, "--format", "mermaid").stdout
    assert mermaid.count("flowchart TD") == 1
    assert "f0_n_j1" in mermaid and "f1_n_j1" in mermaid
    outputs = set()
    for seed in ("1", "2", "3"):
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "blumycelium.compile",
                str(path),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=dict(os.environ, PYTHONHASHSEED=seed),
        )
        outputs.add(finished.stdout)
    assert len(outputs) == 1


def test_dot_labels_keep_backslashes_of_the_source(tmp_path):
    path = tmp_path / "slash.py"
    path.write_text(PRELUDE + '@myc.flow\ndef s():\n    words.task_show("a\\nb")\n')
    dot = compile_command(path, "--format", "dot").stdout
    assert 'words.task_show(\\"a\\\\nb\\")' in dot


def test_invalid_flows_print_the_compile_errors_and_exit_1(tmp_path):
    path = with_prelude(
        tmp_path / "bad.py",
        """
@myc.flow
def bad(text):
    parts = words.task_split(text)
    if parts["count"]:
        words.task_show(parts["cont"])
    calc.task_add(1, 2, 3)
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    errors = finished.stderr
    assert "`if` needs the value" not in errors  # an if on a result is guarded
    assert "%s:%d:25: error:" % (path, PRELUDE_LINES + 6) in errors
    assert "has no result key 'cont' (did you mean 'count'?)" in errors
    assert "takes 2 arguments (a, b) but 3 were given" in errors
    assert "flow bad(text)" in finished.stdout


def test_syntax_the_compiler_refuses_is_reported_per_flow(tmp_path):
    path = tmp_path / "gen.py"
    path.write_text(
        PRELUDE + "@myc.flow\ndef gen():\n    yield 1\n\n"
        "@myc.flow\ndef fine():\n    calc.task_add(1)\n"
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    assert "a flow cannot yield" in finished.stderr
    assert "flow fine()" in finished.stdout


def test_one_flow_can_be_chosen_and_missing_ones_are_named(flows_file):
    assert compile_command(flows_file, "--flow", "report").returncode == 0
    finished = compile_command(flows_file, "--flow", "nope")
    assert finished.returncode == 1
    assert "no flow named 'nope'" in finished.stderr


def test_the_preview_opens_no_store_and_imports_no_store_module(tmp_path):
    path = tmp_path / "touchy.py"
    path.write_text(PRELUDE + "@myc.flow\ndef f():\n    calc.task_add(1)\n")
    code = (
        "import sys; from blumycelium.compile import main;"
        " code = main([sys.argv[1]]);"
        " print([m for m in sys.modules if m.startswith('blumycelium.store')]);"
        " sys.exit(code)"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().endswith("[]")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["touchy.py"]


def test_a_module_that_touches_the_store_at_import_gets_a_clear_error(tmp_path):
    path = tmp_path / "eager.py"
    path.write_text(PRELUDE + "myc.drop()\n")
    finished = compile_command(path)
    assert finished.returncode == 1
    assert "is not opened while previewing flows" in finished.stderr


def test_the_demos_preview_cleanly():
    for demo in (
        "demos/quickstart.py",
        "demos/lists.py",
        "demos/animals/orchestration.py",
    ):
        finished = compile_command(ROOT / demo)
        assert finished.returncode == 0, (demo, finished.stderr)
    animals = compile_command(ROOT / "demos/animals/orchestration.py").stdout
    assert "for nb in range(iterations):" in animals
    assert "if nb % 5 == 0:" in animals
    assert "→ elf 'calc1' (Stats)" in animals


def test_the_preview_reports_what_submission_would_refuse(tmp_path):
    path = with_prelude(
        tmp_path / "refused.py",
        """
@myc.flow
def refused(x):
    r = calc.task_add(x)
    assert r["sum"]
    try:
        calc.task_add(2)
    except ValueError:
        pass
    flag = r["sum"] and calc.task_add(3)
    other = calc.task_add(4) if r["sum"] else None
    return r.sum
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    errors = finished.stderr
    assert "`assert` needs the value" in errors
    assert "calc.task_add(2) is called inside try/except" in errors
    assert "conditional jobs" not in errors  # `and`, `x if c else y` guard them
    assert "a task result has no attribute 'sum'" in errors


def test_the_preview_shows_signatures_nested_tasks_and_local_lambdas(tmp_path):
    path = with_prelude(
        tmp_path / "nested.py",
        """
@myc.flow
def nested(x, *more, k=2, **kw):
    def make(v):
        return calc.task_add(v)
    lam = lambda r: r["sum"]
    return lam(make(x))
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    assert out.startswith("flow nested(x, *more, k, **kw)")
    assert "def make(...):" in out and "j1   task calc.task_add(v)" in out
    assert "expr" not in out


def test_loops_over_results_show_as_fan_outs_and_refusals_match_submission(
    tmp_path,
):
    path = with_prelude(
        tmp_path / "fan.py",
        """
@myc.flow
def fan(text):
    parts = words.task_split(text)
    sizes = []
    for word in parts["words"]:
        sizes.append(calc.task_add(len(word))["sum"])
    kept = [calc.task_add(s)["sum"] for s in sizes if s > 2]
    return kept

@myc.flow
def refused(text):
    parts = words.task_split(text)
    total = 0
    for word in parts["words"]:
        total = total + calc.task_add(1)["sum"]
    for word in parts["words"]:
        if word == "stop":
            break
    return {w for w in parts["words"]}
""",
    )
    finished = compile_command(path, "--flow", "fan")
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    fan_out = "(over a task result: one copy per element, at run time)"
    assert (
        '  for word in parts["words"]:    line %d    %s'
        % (
            PRELUDE_LINES + 6,
            fan_out,
        )
        in out
    )
    assert "  for s in sizes:    line %d    %s" % (PRELUDE_LINES + 8, fan_out) in out
    assert (
        "    if s > 2:    line %d    (decided by a task result" % (PRELUDE_LINES + 8)
        in out
    )
    structure = json.loads(
        compile_command(path, "--flow", "fan", "--format", "json").stdout
    )
    kinds = [r["kind"] for r in structure["flows"][0]["regions"]]
    assert kinds == ["fanout", "fanout", "guarded"]
    refused = compile_command(path, "--flow", "refused")
    assert refused.returncode == 1
    errors = refused.stderr
    assert "'total' is carried from one iteration to the next" in errors
    assert "cannot: its body holds `break`" in errors
    assert "only list, dict and generator comprehensions fan out" in errors


def test_a_called_flow_is_one_node_of_the_caller(tmp_path):
    path = with_prelude(
        tmp_path / "calls.py",
        """
@myc.flow
def inner(x):
    return calc.task_add(x)["sum"]

@myc.flow
def outer(text):
    parts = words.task_split(text)
    return inner(parts["count"])
""",
    )
    finished = compile_command(path, "--flow", "outer")
    assert finished.returncode == 0, finished.stderr
    assert '  f1   flow inner(parts["count"])    line %d' % (PRELUDE_LINES + 9) in (
        finished.stdout
    )
    assert "→ flow inner, built into this run" in finished.stdout
    assert "← j1['count'] as x" in finished.stdout
    mermaid = compile_command(path, "--flow", "outer", "--format", "mermaid").stdout
    assert 'f0_n_f1[["f1: inner(parts#91;#quot;count#quot;#93;)' in mermaid


def test_literal_arguments_are_checked_against_annotations(tmp_path):
    path = with_prelude(
        tmp_path / "literals.py",
        """
@myc.flow
def literals(x):
    calc.task_add("one", b=2.5)
    calc.task_total([1, 2])
    calc.task_add(x, -1)
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    errors = finished.stderr
    line = PRELUDE_LINES + 4
    assert (
        "%s:%d:19: error: Calc.task_add() parameter 'a' expects int, got str 'one'"
        % (path, line)
    ) in errors
    assert (
        "%s:%d:28: error: Calc.task_add() parameter 'b' expects int, got"
        % (
            path,
            line,
        )
        in errors
    )
    assert errors.count("error:") == 2


def test_dot_and_mermaid_name_guarded_and_fan_out_regions(tmp_path):
    path = with_prelude(
        tmp_path / "regions.py",
        """
@myc.flow
def regions(text):
    parts = words.task_split(text)
    for word in parts["words"]:
        if word == "x":
            words.task_show(word)
""",
    )
    mermaid = compile_command(path, "--format", "mermaid").stdout
    assert '["fan-out: for word in parts#91;#quot;words#quot;#93; · line' in mermaid
    assert '["guarded: if word == #quot;x#quot; · line' in mermaid
    dot = compile_command(path, "--format", "dot").stdout
    assert 'label="fan-out: for word in parts[\\"words\\"]  (line' in dot
    assert 'label="guarded: if word == \\"x\\"  (line' in dot


def readme_flows() -> list[str]:
    """README's python examples that define a flow over the prelude's elves."""
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```python\n")[1:]
    codes = [block.split("```", 1)[0] for block in blocks]
    return [c for c in codes if "@myc.flow" in c and "calc." in c and "class " not in c]


def test_readme_flow_examples_preview_without_errors(tmp_path):
    examples = readme_flows()
    assert any("def triage" in code for code in examples)
    for number, code in enumerate(examples):
        path = tmp_path / ("readme_%d.py" % number)
        path.write_text(PRELUDE + code)
        done = compile_command(path)
        assert done.returncode == 0, code + done.stdout + done.stderr
        assert "error" not in done.stderr, done.stderr


def test_a_name_from_one_branch_used_after_it_is_an_error_in_the_preview(tmp_path):
    path = with_prelude(
        tmp_path / "flows.py",
        """
@myc.flow
def f(x):
    r = calc.task_add(x)["sum"]
    if r > 2:
        s = calc.task_add(r)
    elif r > 1:
        s = calc.task_add(0)
    else:
        t = 1
    return s["sum"]
""",
    )
    done = compile_command(path)
    assert done.returncode == 1
    line = PRELUDE_LINES + 11
    assert "flows.py:%d:12: error: 's' is assigned in only one branch" % line in (
        done.stderr
    )


def test_changes_in_place_inside_a_fan_out_are_errors_in_the_preview(tmp_path):
    path = with_prelude(
        tmp_path / "flows.py",
        """
@myc.flow
def bad(text):
    box, seen = [0], {}
    for word in words.task_split(text)["words"]:
        box[0] += 1
        seen.pop("a", None)
    return box

@myc.flow
def fine(text):
    rows, sizes = [], []
    for word in words.task_split(text)["words"]:
        row = {"word": word}
        row["size"] = calc.task_add(len(word))["sum"]
        rows.append(row)
        sizes += [row["size"]]
    return rows, sizes
""",
    )
    done = compile_command(path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 2, done.stderr
    assert "this changes 'box' in place inside a loop" in errors[0]
    assert "this changes 'seen' in place inside a loop" in errors[1]


VALID_BUT_UNUSUAL = """
@myc.flow
def pair(x):
    r = calc.task_add(x)
    return r["sum"], r["sum"] * 2

@myc.flow
def nested(text):
    rows = words.task_split(text)
    out = []
    for word in rows["words"]:
        for letter in words.task_split(word)["words"]:
            out.append(calc.task_add(len(letter))["sum"])
    a, b = pair(len(out))
    return out, a, b

@myc.flow
def late(n):
    for i in range(n):
        if i:
            previous.task_add(i)
        previous = calc

calc.double = lambda x: 2 * x  # an attribute of the elf, not of its class

@myc.flow
def shadowing(n, pair=max, words=None):
    calc = {"k": n}
    words = words or [n]
    return pair(calc.get("k"), 2, 3), words, double(n)

def double(n):
    return 2 * n

@myc.flow
def instance_method(n):
    return calc.double(n)
"""


def test_valid_flows_the_preview_once_refused_pass_it(tmp_path):
    path = tmp_path / "fine.py"
    path.write_text(PRELUDE + VALID_BUT_UNUSUAL)
    finished = compile_command(path)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    # the inner loop of the fan-out is shown once: its body is built once
    assert finished.stdout.count('for letter in words.task_split(word)["words"]') == 1


def test_the_preview_reports_names_and_calls_submission_would_refuse(tmp_path):
    path = tmp_path / "typos.py"
    path.write_text(
        PRELUDE
        + VALID_BUT_UNUSUAL
        + """
@myc.flow
def typos(n):
    calk.task_add(n)
    calc.tsak_add(n)
    calc.task_add(nn)
    return pair(n, 2)
"""
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    errors = finished.stderr
    line = PRELUDE_LINES + VALID_BUT_UNUSUAL.count("\n") + 4
    assert (
        "%s:%d:5: error: name 'calk' is not defined (did you mean 'calc'?)"
        % (
            path,
            line,
        )
        in errors
    )
    assert "Calc has no attribute tsak_add (did you mean 'task_add'?)" in errors
    assert "name 'nn' is not defined (did you mean 'n'?)" in errors
    assert "flow pair() cannot take these arguments: too many positional" in errors
    assert "hint: call it as its def says: pair(x)" in errors


def test_flows_defined_in_classes_are_previewed(tmp_path):
    path = with_prelude(
        tmp_path / "methods.py",
        """
class Pipeline:
    @myc.flow
    def step(self, x):
        return calc.task_add(x)["sum"] * 2

    class Inner:
        @myc.flow
        def deeper(self, x):
            return calc.task_add(x, 5)["total"]

Alias = Pipeline


@myc.flow
def top(x):
    return calc.task_add(x)["sum"]
""",
    )
    finished = compile_command(path)
    out = finished.stdout
    assert [
        line.split("(")[0] for line in out.splitlines() if line.startswith("flow ")
    ] == [
        "flow step",
        "flow deeper",
        "flow top",
    ], out
    assert finished.returncode == 1
    assert "Calc.task_add() has no result key 'total'" in finished.stderr
    assert finished.stderr.count("has no result key") == 1
    only = compile_command(path, "--flow", "step")
    assert only.returncode == 0, only.stderr
    assert "flow step(self, x)" in only.stdout


def test_the_preview_refuses_a_generator_over_a_result_kept_in_a_name(tmp_path):
    path = with_prelude(
        tmp_path / "generators.py",
        """
@myc.flow
def kept(text):
    g = (len(w) for w in words.task_split(text)["words"])
    return list(g)

@myc.flow
def consumed(text):
    found = words.task_split(text)["words"]
    return sum(len(w) for w in found), max((len(w) for w in found), default=0)

@myc.flow
def static(x):
    g = (calc.task_add(i)["sum"] for i in range(x))
    return list(g)
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    errors = finished.stderr
    assert errors.count("a generator kept in a name could be consumed twice") == 1
    assert "g = (len(w) for w in" in errors


def test_the_preview_accepts_what_runs_with_lists_a_fan_out_grew(tmp_path):
    path = with_prelude(
        tmp_path / "grown.py",
        """
import itertools

@myc.flow
def again(text):
    r = words.task_split(text)
    out = []
    for i in range(2):
        for w in r["words"]:
            out.append(w)
    out.append("z")
    return out

@myc.flow
def first(x):
    return next(calc.task_add(i)["sum"] for i in itertools.count())

@myc.flow
def truth(text):
    out = []
    for w in words.task_split(text)["words"]:
        out.append(w)
    out.append("z")
    if out:
        return 1
    return 2
""",
    )
    finished = compile_command(path)
    errors = finished.stderr
    assert "carried" not in errors and "would change a task result" not in errors
    assert "next() is ordinary code" not in errors
    # a list the run gathered is still known only at run time
    assert "`if` needs the value of `out`" in errors, errors
    assert errors.count("error:") == 1, errors


def test_the_preview_refuses_growing_a_list_through_a_chain_in_a_fan_out(tmp_path):
    path = with_prelude(
        tmp_path / "chains.py",
        """
@myc.flow
def f(text):
    lists = [[], []]
    for w in words.task_split(text)["words"]:
        lists[0].append(w)
    return lists
""",
    )
    finished = compile_command(path)
    assert finished.returncode == 1
    assert "this changes 'lists' in place inside a loop over a task result" in (
        finished.stderr
    )
