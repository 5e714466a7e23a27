"""The on-disk cache of rewritten flows: a flow rewritten by one process is
taken from the cache by the next, builds the same graph and reports errors
at the same places; anything wrong with the cache costs only time."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from blumycelium import compiler
from blumycelium.compiler import cache, diagnostics
from blumycelium.compiler import source as source_module
from tests.conftest import PRELUDE_LINES, ROOT, run_both

FLOWS = """
@myc.flow
def f(x):
    a = calc.task_add(x)["sum"]
    b = calc.task_add(a, 2)["sum"]
    parts = [calc.task_add(n)["sum"] for n in range(3)]
    return a + b, parts

@myc.flow
def bad(text):
    words.task_split(text)["words"].append("x")
"""


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("BLUMYCELIUM_CACHE_DIR", str(directory))
    return directory


@pytest.fixture
def fresh_process(monkeypatch):
    """Forget the rewrites this process made, as a new process would not
    know them, and fail any parse: whatever compiles must come from disk."""
    monkeypatch.setattr(compiler, "_REWRITES", {})

    def no_parse(source):
        raise AssertionError("flow %s was parsed, not read from the cache" % source)

    return lambda: monkeypatch.setattr(compiler, "parse_flow", no_parse)


def graph_of(flow, *args) -> list:
    graph = flow.graph(*args)
    return [
        (job.spec.name, job.arguments, sorted(job.dependencies), job.site.line)
        for job in graph.jobs
    ]


def test_a_cached_flow_builds_the_same_graph_and_result(
    load_flows, cache_dir, fresh_process
):
    module = load_flows(FLOWS)
    first = graph_of(module.f, 4)
    assert len(list(cache_dir.glob("*.json"))) == 2  # one file per flow
    fresh_process()
    again = compiler.compile_flow(module.f.function)
    assert again.rewritten.code == module.f.compiled.rewritten.code
    module.f.compiled = again
    assert graph_of(module.f, 4) == first
    assert first[0][3] == PRELUDE_LINES + 4  # the task call's own line
    assert run_both(module, module.f, 4) == ((12, [1, 2, 3]), (12, [1, 2, 3]))


def test_a_cached_flow_reports_errors_where_they_are(
    load_flows, cache_dir, fresh_process
):
    module = load_flows(FLOWS)
    with pytest.raises(Exception) as before:
        module.bad.graph("a b")
    fresh_process()
    module.bad.compiled = compiler.compile_flow(module.bad.function)
    with pytest.raises(Exception) as after:
        module.bad.graph("a b")
    assert str(after.value) == str(before.value)
    assert ":%d:" % (PRELUDE_LINES + 11) in str(after.value)


def test_another_process_reads_the_cache(load_flows, cache_dir, tmp_path):
    module = load_flows(FLOWS)
    expected = graph_of(module.f, 2)
    script = tmp_path / "again.py"
    script.write_text(
        "import sys, importlib.util\n"
        "from blumycelium import compiler\n"
        "def refuse(source):\n"
        "    raise SystemExit('parsed %s' % source.name)\n"
        "compiler.parse_flow = refuse\n"
        "spec = importlib.util.spec_from_file_location('again', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "graph = module.f.graph(2)\n"
        "print([(j.spec.name, j.arguments, sorted(j.dependencies), j.site.line)"
        " for j in graph.jobs])\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), module.__file__],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == repr(expected)


def test_an_edited_flow_is_rewritten_again(load_flows, cache_dir):
    module = load_flows(FLOWS)
    source = source_module.read_flow_source(module.f.function)
    edited = source_module.FlowSource(
        source.name, source.file, source.first_line, source.indent, source.text + "\n"
    )
    assert cache.cache_key(edited) != cache.cache_key(source)
    moved = source_module.FlowSource(
        source.name, source.file, source.first_line + 1, source.indent, source.text
    )
    assert cache.cache_key(moved) != cache.cache_key(source)


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: text.replace("getitem", "getitdm"),  # still JSON
        lambda text: "[" * 200_000,  # too deep to read
        lambda text: json.dumps({**json.loads(text), "spans": []}),
        lambda text: json.dumps({**json.loads(text), "format": 1}),
    ],
)
def test_a_damaged_cache_file_is_ignored_and_written_again(
    load_flows, cache_dir, fresh_process, damage
):
    module = load_flows(FLOWS)
    expected = graph_of(module.f, 1)
    key = cache.cache_key(source_module.read_flow_source(module.f.function))
    path = cache_dir / (key + ".json")
    path.write_text(damage(path.read_text()))
    compiler._REWRITES.clear()
    module.f.compiled = compiler.compile_flow(module.f.function)
    assert graph_of(module.f, 1) == expected
    document = json.loads(path.read_text())
    assert document["code"] == module.f.compiled.rewritten.code


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("BLUMYCELIUM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert cache.cache_directory() == tmp_path / ".cache" / "blumycelium" / "flows"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_directory() == tmp_path / "xdg" / "blumycelium" / "flows"


def test_no_cache_directory_means_no_cache(load_flows, monkeypatch, tmp_path):
    monkeypatch.setenv("BLUMYCELIUM_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    module = load_flows(FLOWS)
    assert graph_of(module.f, 1)
    assert cache.cache_directory() is None
    assert not (tmp_path / "xdg").exists()


def test_an_unwritable_cache_directory_costs_only_time(
    load_flows, monkeypatch, tmp_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BLUMYCELIUM_CACHE_DIR", str(blocker / "cache"))
    module = load_flows(FLOWS)
    assert graph_of(module.f, 1)[0][0] == "task_add"


def test_a_taken_site_block_moves_the_flow_to_a_block_of_its_own(
    load_flows, cache_dir, fresh_process
):
    module = load_flows(FLOWS)
    expected = graph_of(module.f, 3)
    first = module.f.compiled.rewritten.first_site
    # another flow (48 bits of the same hash) already holds the block
    taken = diagnostics.SourceSpan("other.py", 1, 0, 1, 1, "other")
    diagnostics._SITES[first] = taken
    try:
        compiler._REWRITES.clear()  # the cache is read, and refused: parse again
        module.f.compiled = compiler.compile_flow(module.f.function)
        assert module.f.compiled.rewritten.first_site != first
        assert graph_of(module.f, 3) == expected
        assert diagnostics.site(first) is taken
    finally:
        diagnostics._SITES.pop(first)


def test_the_key_follows_the_compiler_text_not_its_file_dates(tmp_path):
    copy = tmp_path / "compiler"
    shutil.copytree(cache._COMPILER, copy, copy_function=shutil.copy2)
    assert cache._compiler_fingerprint(copy) == cache._FINGERPRINT
    rewrite = copy / "rewrite.py"
    status = rewrite.stat()
    text = rewrite.read_text()
    rewrite.write_text(text.replace('"binop"', '"binoq"'))  # same size
    os.utime(rewrite, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert rewrite.stat().st_size == status.st_size
    assert cache._compiler_fingerprint(copy) != cache._FINGERPRINT


def test_entries_unused_for_a_month_and_abandoned_temporaries_are_pruned(
    load_flows, cache_dir, fresh_process
):
    module = load_flows(FLOWS)
    key = cache.cache_key(source_module.read_flow_source(module.f.function))
    read_again = cache_dir / (key + ".json")
    stale = cache_dir / "stale.json"
    stale.write_text("{}")
    abandoned = cache_dir / "left-by-a-dead-writer.tmp"
    abandoned.write_text("{")
    being_written = cache_dir / "being-written.tmp"
    being_written.write_text("{")
    now = time.time()
    month, hour = cache.UNUSED_SECONDS + 60, cache.ABANDONED_SECONDS + 60
    for path, age in ((stale, month), (abandoned, hour), (read_again, month)):
        os.utime(path, (now - age, now - age))
    fresh_process()
    compiler._REWRITES.clear()
    compiler.compile_flow(module.f.function)  # read from the cache: used now
    cache.prune(cache_dir)
    assert read_again.exists() and being_written.exists()
    assert not stale.exists() and not abandoned.exists()
    assert len(list(cache_dir.glob("*.json"))) == 2  # f's and bad's
