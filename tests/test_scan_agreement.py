"""The rewrite (Python's ast, ``scan.py``) and the preview (libcst,
``cstscan.py``) must read every ``if`` and ``for`` alike, or the preview
would describe another flow than the one that runs. Both are asked about
each ``if`` and ``for`` of a corpus: the project's own modules, demos and
tests, and every flow written in the tests' strings."""

import ast
import pathlib
import textwrap

import libcst as cst
import pytest

from blumycelium.compiler import cstscan, scan
from blumycelium.compiler.walk import Walker

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Loops and branches the other texts lack (the corpus takes this string too).
EDGES = """
def f(d, ﬁ):
    x = 0
    for i in d:
        x = g(i); y = x + 1
        fi = ﬁ + i
    for a, *rest in d:
        match [a, rest]:
            case [b, *more] if b:
                pass
            case {"k": c, **others}:
                pass
        del box[0], tmp
        with open(a) as handle:
            pass
        try:
            pass
        except E as error:
            pass
    for p in d:
        if p:
            q = 1
        elif p > 1:
            q = 2
        else:
            if p < 0:
                return q
    return x
"""


def corpus() -> list[tuple[str, str]]:
    texts = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        texts.append((str(path.relative_to(ROOT)), text))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                flow = textwrap.dedent(node.value)
                if "def " in flow and _parses(flow):
                    texts.append(("%s:%d" % (path.name, node.lineno), flow))
    return texts


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
        cst.parse_module(text)
    except (SyntaxError, cst.ParserSyntaxError):
        return False
    return True


class _Collect(Walker):
    def __init__(self):
        self.found = []

    def visit_If(self, node):
        self.found.append(node)

    def visit_For(self, node):
        self.found.append(node)


def _ast_nodes(module: ast.Module) -> list:
    found = []

    def walk(node):
        if isinstance(node, (ast.If, ast.For)):
            found.append(node)
        for child in scan.children(node):
            walk(child)

    walk(module)
    return found


def _answers(ask, node, escape=False) -> tuple:
    """What ``ask`` (scan or cstscan) says of a ``for``, or of an ``if``
    whose chain escape is given."""
    if escape:
        return ("if", escape())
    assigned, grown, carried = ask.loop_names(node)
    return (
        "for",
        ask.fan_out_obstacle(node),
        ask.loop_target_names(node.target),
        ask.for_names(node),
        assigned,
        grown,
        carried,
    )


def _cst_answers(node) -> tuple:
    is_if = isinstance(node, cst.If)
    return _answers(cstscan, node, is_if and (lambda: cstscan.chain_escape(node)))


def _ast_answers(node, lines) -> tuple:
    is_if = isinstance(node, ast.If)
    return _answers(scan, node, is_if and (lambda: scan.chain_escape(node, lines)))


TEXTS = corpus()


def test_the_corpus_holds_many_ifs_and_fors():
    count = sum(len(_ast_nodes(ast.parse(text))) for _, text in TEXTS)
    assert len(TEXTS) > 200 and count > 1000


@pytest.mark.parametrize("where,text", TEXTS, ids=[where for where, _ in TEXTS])
def test_preview_and_rewrite_read_ifs_and_fors_alike(where, text):
    collect = _Collect()
    collect.walk(cst.parse_module(text))
    module = ast.parse(text)
    lines = text.encode().split(b"\n")
    nodes = _ast_nodes(module)
    assert len(nodes) == len(collect.found)
    for ours, theirs in zip(nodes, collect.found):
        expected = _cst_answers(theirs)
        assert _ast_answers(ours, lines) == expected, "%s line %d" % (
            where,
            ours.lineno,
        )
