"""What the operator commands show: data for ``--json``, and its rendering.

Each ``*_data`` function reads the store and returns plain JSON-able data;
each ``show_*`` function renders that data for a person through a
:class:`~blumycelium.console.Console`. The command line (``cli.py``) picks
one or the other.
"""

from __future__ import annotations

import re
import reprlib
import shutil
import subprocess
import time
from datetime import datetime

from .develop import develop_templates
from .errors import BlumyceliumError, StoreError
from .values import MARKERS, ExprMarker, RefMarker, decode

STATUS_COLORS = {
    "pending": "#eeeeee",
    "ready": "#dde8ff",
    "running": "#ffe9a8",
    "done": "#c9f0c9",
    "failed": "#f7b5b5",
    "upstream_failed": "#f3d6d6",
    "skipped": "#e6e6e6",
    "cancelled": "#d9d9d9",
}


def when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def seconds(start: float | None, end: float | None) -> float | None:
    if start is None:
        return None
    return round((end or time.time()) - start, 3)


def counts_text(counts: dict) -> str:
    order = (
        "done",
        "running",
        "ready",
        "pending",
        "failed",
        "upstream_failed",
        "skipped",
        "cancelled",
    )
    return " ".join("%d %s" % (counts[s], s) for s in order if counts.get(s))


# -- runs --------------------------------------------------------------------------


def run_data(store, run) -> dict:
    return {
        "id": run.id,
        "flow": run.flow,
        "status": run.status,
        "run_key": run.run_key,
        "submitted": when(run.submitted_at),
        "finished": when(run.finished_at),
        "duration": seconds(run.submitted_at, run.finished_at),
        "jobs": run.jobs_total,
        "counts": store.count_jobs(run.id),
    }


def runs_data(store, limit: int) -> list[dict]:
    return [run_data(store, run) for run in store.list_runs(limit)]


def show_runs(console, runs: list[dict]) -> None:
    console.table(
        ["RUN", "FLOW", "SUBMITTED", "SECONDS", "JOBS", "STATUS"],
        [
            [
                r["id"],
                r["flow"],
                r["submitted"],
                r["duration"],
                counts_text(r["counts"]) or "no jobs",
                r["status"],
            ]
            for r in runs
        ],
    )


# -- jobs --------------------------------------------------------------------------


def job_data(job) -> dict:
    data = job.as_dict()
    data["call_site"] = "%s:%s" % (job.site.get("file"), job.site.get("line"))
    # a job waiting again (a retry) has no duration until it runs
    running = job.status == "running" or job.finished_at is not None
    data["duration"] = (
        seconds(job.started_at, job.finished_at) if job.started_at and running else None
    )
    for key in ("created_at", "started_at", "finished_at", "not_before"):
        data[key] = when(data[key])
    return data


def jobs_data(store, run=None, elf=None, status=None) -> list[dict]:
    statuses = None if status is None else [status]
    return [
        job_data(job)
        for job in store.list_jobs(elf_uid=elf, run_id=run, statuses=statuses)
    ]


def show_jobs(console, jobs: list[dict]) -> None:
    console.table(
        ["JOB", "RUN", "#", "ELF", "TASK", "STATUS", "TRIES", "SECONDS", "CALL SITE"],
        [
            [
                j["id"],
                j["run_id"],
                j["index"],
                j["elf_uid"],
                j["task"],
                j["status"],
                j["attempts"],
                j["duration"],
                _short_site(j),
            ]
            for j in jobs
        ],
    )


def _short_site(job: dict) -> str:
    site = job["site"]
    return "%s:%s" % (str(site.get("file", "")).rsplit("/", 1)[-1], site.get("line"))


def job_detail_data(store, job_id: str) -> dict:
    job = store.get_job(job_id)
    data = job_data(job)
    data["flow_line"] = flow_line(store, job)
    data["parameters"] = _developed_parameters(store, job)
    data["result"] = _decoded_result(store.job_result(job.id))
    data["failures"] = [failure_data(f) for f in store.list_failures(job_id=job.id)]
    return data


def _decoded_result(stored):
    """A job's result as its task returned it (tuples, large ints, dicts with
    other keys than strings); a marker (a skipped job's) as stored."""
    try:
        value = decode(stored)
    except (ValueError, KeyError, TypeError):
        return stored
    return stored if isinstance(value, MARKERS) else value


def _developed_parameters(store, job) -> dict:
    """The job's parameters as its task gets them; while results they need
    are not known yet, each reference and expression says what it waits for."""
    templates = {p.name: p.value for p in store.job_parameters(job.id)}
    try:
        return develop_templates(
            templates, lambda indices: store.fetch_results(job.run_id, indices)
        )
    except (BlumyceliumError, KeyError, TypeError):
        ids = {j.index: j.id for j in store.list_jobs(run_id=job.run_id)}
        return {name: _awaiting(value, ids) for name, value in templates.items()}


def _awaiting(template, ids: dict):
    """A parameter of a job that has not run, each reference and expression
    saying what it waits for (as stored where it cannot be read so)."""
    try:
        return decode(template, lambda marker: _awaited(marker, ids))
    except (BlumyceliumError, KeyError, TypeError, ValueError):
        return template


def _awaited(marker, ids: dict) -> str:
    if isinstance(marker, RefMarker):
        return "<%s, not known yet>" % _named(marker, ids)
    if isinstance(marker, ExprMarker):
        inputs = ", ".join(
            "%s = %s" % (name, _named(decode(value), ids))
            for name, value in marker.inputs.items()
        )
        return "<%s where %s, once known>" % (marker.code, inputs)
    return "<%s>" % type(marker).__name__.replace("Marker", "").lower()


def _named(value, ids: dict) -> str:
    """A reference as the job result it names; a value known now as its repr."""
    if not isinstance(value, RefMarker):
        return reprlib.repr(value)
    suffix = "" if value.key is None else "[%r]" % value.key
    return "result of job %s%s" % (ids.get(value.job), suffix)


def failure_data(failure) -> dict:
    return {
        "id": failure.id,
        "job_id": failure.job_id,
        "attempt": failure.attempt,
        "exception_type": failure.exception_type,
        "message": failure.message,
        "traceback": failure.traceback,
        "hash": failure.traceback_hash,
        "task_revision": failure.task_revision,
        "at": when(failure.created_at),
    }


def show_job(console, job: dict) -> None:
    console.fields(
        [
            ("job", job["id"]),
            ("run", job["run_id"]),
            ("index", job["index"]),
            ("elf", job["elf_uid"]),
            ("task", job["task"]),
            ("revision", job["task_revision"]),
            ("status", job["status"]),
            ("attempts", job["attempts"]),
            ("created", job["created_at"]),
            ("started", job["started_at"]),
            ("finished", job["finished_at"]),
            ("seconds", job["duration"]),
            ("worker", job["worker"]),
            (
                "call site",
                "%s in flow %s" % (job["call_site"], job["site"].get("flow")),
            ),
            ("flow line", job["flow_line"]),
            *(
                ("called from", "%s:%s in flow %s" % (v["file"], v["line"], v["flow"]))
                for v in job["site"].get("via", ())
            ),
        ]
    )
    console.heading("parameters")
    for name, value in job["parameters"].items():
        console.line("    %s = %r" % (name, value))
    console.heading("result")
    console.line("    %r" % (job["result"],))
    for failure in job["failures"]:
        console.block(
            "failure of attempt %d: %s: %s"
            % (failure["attempt"], failure["exception_type"], failure["message"]),
            failure["traceback"],
        )


def flow_line(store, job) -> str | None:
    """The text of the flow line that created the job, from its stored source."""
    if "text" in job.site:  # made by a flow the run's flow called
        return job.site["text"]
    try:
        run = store.get_run(job.run_id)
    except StoreError:
        return None
    flow = store.get_flow_revision(run.flow_revision)
    if flow is None:
        return None
    lines = flow["source"].splitlines()
    offset = job.site.get("line", 0) - flow["line"]
    return lines[offset].strip() if 0 <= offset < len(lines) else None


# -- failures ----------------------------------------------------------------------


def failures_data(store, run=None) -> list[dict]:
    groups: dict = {}
    for failure in store.list_failures(run_id=run):
        group = groups.get(failure.traceback_hash)
        if group is None:
            job = store.get_job(failure.job_id)
            group = groups[failure.traceback_hash] = dict(
                failure_data(failure),
                jobs=[],
                count=0,
                task=job.task,
                elf_uid=job.elf_uid,
                call_site="%s:%s in flow %s"
                % (job.site.get("file"), job.site.get("line"), job.site.get("flow")),
                flow_line=flow_line(store, job),
                task_source=marked_source(store, failure, job.task),
            )
        group["count"] += 1
        group["jobs"].append({"job": failure.job_id, "attempt": failure.attempt})
    return sorted(groups.values(), key=lambda g: -g["count"])


def marked_source(store, failure, task: str) -> str | None:
    """The task's stored source with the failing line marked ``>>``."""
    revision = store.get_task_revision(failure.task_revision or "")
    if not revision or not revision["source"]:
        return None
    failing = _failing_line(failure.traceback, task)
    lines = []
    for text in revision["source"].rstrip().splitlines():
        marked = failing is not None and text.strip() == failing
        lines.append(("  >> " if marked else "     ") + text)
    return "\n".join(lines)


def _failing_line(traceback_text: str, task: str) -> str | None:
    found = None
    rows = traceback_text.splitlines()
    for number, row in enumerate(rows):
        if re.match(r'\s*File ".*", line \d+, in %s$' % re.escape(task), row):
            if number + 1 < len(rows):
                found = rows[number + 1].strip()
    return found


SHOWN_JOBS = 20  # jobs a failure group names in text (--json lists them all)


def _some_jobs(jobs: list[dict]) -> str:
    shown = ", ".join(
        "%s (attempt %s)" % (j["job"], j["attempt"]) for j in jobs[:SHOWN_JOBS]
    )
    if len(jobs) > SHOWN_JOBS:
        shown += " and %d more (--json lists them all)" % (len(jobs) - SHOWN_JOBS)
    return shown


def show_failures(console, groups: list[dict]) -> None:
    if not groups:
        console.line("no failures")
    for group in groups:
        console.heading(
            "%s: %s  (%d time%s; %s on elf %r)"
            % (
                group["exception_type"],
                group["message"],
                group["count"],
                "" if group["count"] == 1 else "s",
                group["task"],
                group["elf_uid"],
            )
        )
        console.fields(
            [
                ("jobs", _some_jobs(group["jobs"])),
                ("created by", group["call_site"]),
                ("flow line", group["flow_line"]),
            ]
        )
        console.block("traceback", group["traceback"])
        if group["task_source"]:
            console.block(
                "task source (revision %s)" % group["task_revision"],
                group["task_source"],
            )
        console.line()


# -- elves and workers -------------------------------------------------------------


def elves_data(store) -> list[dict]:
    elves = store.list_elves()
    for elf in elves:
        elf["registered_at"], elf["updated_at"] = (
            when(elf["registered_at"]),
            when(elf["updated_at"]),
        )
        for revision in elf["revisions"]:
            revision["registered_at"] = when(revision["registered_at"])
    return elves


def show_elves(console, elves: list[dict]) -> None:
    console.table(
        ["ELF", "CLASS", "MODULE", "REVISION", "REVISIONS", "UPDATED"],
        [
            [
                e["uid"],
                e["class_name"],
                e["module"],
                e["revision"],
                len(e["revisions"]),
                e["updated_at"],
            ]
            for e in elves
        ],
    )


def workers_data(store) -> list[dict]:
    now = time.time()
    workers = []
    for worker in store.list_workers():
        state = (
            "stopped"
            if worker.stopped_at
            else ("lost" if worker.is_lost(now) else "serving")
        )
        workers.append(
            {
                "id": worker.id,
                "host": worker.host,
                "pid": worker.pid,
                "elf_uid": worker.elf_uid,
                "state": state,
                "started": when(worker.started_at),
                "heartbeat": when(worker.heartbeat_at),
                "job_id": worker.job_id,
                "lease": worker.lease,
                "stopped": when(worker.stopped_at),
            }
        )
    return workers


def show_workers(console, workers: list[dict]) -> None:
    console.table(
        ["WORKER", "HOST", "PID", "ELF", "STATE", "STARTED", "HEARTBEAT", "JOB"],
        [
            [
                w["id"],
                w["host"],
                w["pid"],
                w["elf_uid"],
                w["state"],
                w["started"],
                w["heartbeat"],
                w["job_id"],
            ]
            for w in workers
        ],
    )


# -- one run's graph ---------------------------------------------------------------


def graph_data(store, run_id: str) -> dict:
    run = store.get_run(run_id)
    return {
        "run": run_data(store, run),
        "jobs": [job_data(job) for job in store.list_jobs(run_id=run.id)],
        "edges": [{"from": a, "to": b} for a, b in store.list_edges(run.id)],
    }


def render_graph(graph: dict, form: str) -> str:
    if form == "dot":
        return graph_dot(graph)
    if form == "mermaid":
        return graph_mermaid(graph)
    if form == "svg":
        return graph_svg(graph)
    raise ValueError(form)


def show_graph(console, graph: dict) -> None:
    run = graph["run"]
    console.heading(
        "run %s of flow %s: %s  (%s)"
        % (
            run["id"],
            run["flow"],
            run["status"],
            counts_text(run["counts"]) or "no jobs",
        )
    )
    ids = {j["index"]: j["id"] for j in graph["jobs"]}
    waits: dict = {}
    for edge in graph["edges"]:
        waits.setdefault(edge["to"], []).append(str(ids.get(edge["from"], "?")))
    console.table(
        ["#", "JOB", "TASK", "ELF", "STATUS", "SECONDS", "WAITS FOR JOBS", "CALL SITE"],
        [
            [
                j["index"],
                j["id"],
                j["task"],
                j["elf_uid"],
                j["status"],
                j["duration"],
                ",".join(waits.get(j["index"], [])),
                _short_site(j),
            ]
            for j in graph["jobs"]
        ],
    )


def _label(job: dict) -> str:
    return "#%s %s\\n%s · %s\\n%s" % (
        job["index"],
        job["task"],
        job["elf_uid"],
        job["status"],
        _short_site(job),
    )


def graph_dot(graph: dict) -> str:
    run = graph["run"]
    lines = [
        'digraph "run %s" {' % run["id"],
        '  label="run %s of flow %s: %s"; labelloc=t;'
        % (run["id"], _dot_text(run["flow"]), run["status"]),
        '  node [shape=box, style="rounded,filled", fontname="Helvetica",'
        " fontsize=10];",
    ]
    for job in graph["jobs"]:
        lines.append(
            '  j%s [label="%s", fillcolor="%s"];'
            % (
                job["index"],
                _dot_text(_label(job)),
                STATUS_COLORS.get(job["status"], "#ffffff"),
            )
        )
    for edge in graph["edges"]:
        lines.append("  j%s -> j%s;" % (edge["from"], edge["to"]))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return str(text).replace('"', '\\"')


def graph_mermaid(graph: dict) -> str:
    lines = ["flowchart TD"]
    for status, color in STATUS_COLORS.items():
        lines.append("  classDef %s fill:%s" % (status, color))
    for job in graph["jobs"]:
        text = _label(job).replace("\\n", "<br/>").replace('"', "#quot;")
        lines.append('  j%s["%s"]:::%s' % (job["index"], text, job["status"]))
    for edge in graph["edges"]:
        lines.append("  j%s --> j%s" % (edge["from"], edge["to"]))
    return "\n".join(lines) + "\n"


def graph_svg(graph: dict) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise StoreError(
            "--format svg needs Graphviz's dot program, which is not"
            " installed here (e.g. apt install graphviz); use --format"
            " dot and render it elsewhere"
        )
    finished = subprocess.run(
        [dot, "-Tsvg"],
        input=graph_dot(graph),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if finished.returncode != 0:
        raise StoreError("dot failed: %s" % finished.stderr.strip())
    return finished.stdout
