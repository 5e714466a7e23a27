"""The jobs blumycelium itself runs: the expansion and the gathering of a
loop over a task result (see ``compiler/fanout.py`` for what they mean).

Any worker runs them, whatever elf it serves, so a fan-out needs no daemon
of its own. An *expand* job develops its iterable, copies the loop's
template once per element (replacing the loop's element and its template
references with the element's value and the copies' indices), and hands the
copies to the store, which adds them to the run in the transaction that
completes the expand job. A *gather* job collects, in order, what each
iteration left: the last values of the names the body assigned, and the
items it appended to lists whose guard held.
"""

from __future__ import annotations

import itertools

from .develop import Developer, holds, referenced_jobs
from .errors import ExecutionError
from .store.base import JobDocument, ParameterDocument, order_key
from .values import TAG, FailedMarker, SkippedMarker, encode, has_placeholders

MAX_COPIES = 1_000_000  # jobs one expansion may add to a run


def run_system_job(store, job) -> object:
    """Run one claimed system job. Returns the gather result to store, or
    None when the job completed itself (an expansion)."""
    parameters = {p.name: p.value for p in job.parameters}
    if job.task == "expand":
        expand(store, job, parameters)
        return None
    if job.task == "gather":
        return gather(store, job, parameters)
    raise ExecutionError("unknown system task %r" % job.task)


def _developer(store, job, templates: dict) -> Developer:
    needed: set = set()
    for template in templates.values():
        referenced_jobs(template, needed)
    results = store.fetch_results(job.run_id, needed) if needed else {}
    return Developer(results, "%s job %s: " % (job.task, job.id))


def expand(store, job, parameters: dict) -> None:
    iterable = _developer(store, job, {"i": parameters["iterable"]}).develop(
        parameters["iterable"]
    )
    try:
        elements = list(itertools.islice(iterable, MAX_COPIES + 1))
    except TypeError:
        raise ExecutionError(
            "the loop at %s:%s iterates over %s %r, which is not iterable"
            % (
                job.site.get("file"),
                job.site.get("line"),
                type(iterable).__name__,
                iterable,
            )
        ) from None
    template = parameters["template"]
    if elements and template.get("failure"):
        raise _body_failed(job, template["failure"])
    _check_size(job, len(elements), len(template["jobs"]))
    copies, iterations = _copies(store, job, template, elements)
    gather_job = template["gather"]["job"]["job"]
    gathered = [
        ParameterDocument("iterations", iterations, True),
        ParameterDocument("grown", sorted(template["gather"]["appends"]), False),
    ]
    if not store.expand_job(
        job.id,
        job.attempt,
        copies,
        gather_job,
        gathered,
        sorted(referenced_jobs(iterations)),
    ):
        raise ExecutionError(
            "expand job %s lost its lease before it could store the expansion" % job.id
        )


def _body_failed(job, failure: dict) -> ExecutionError:
    return ExecutionError(
        "the body of the loop at %s:%s raised %s: %s when the flow was built,"
        " before its elements were known; Python would raise it at the first"
        " element. The error as it was raised:\n%s"
        % (
            job.site.get("file"),
            job.site.get("line"),
            failure["type"],
            failure["message"],
            failure["traceback"],
        )
    )


def _check_size(job, elements: int, jobs: int) -> None:
    if elements > MAX_COPIES or elements * jobs > MAX_COPIES:
        raise ExecutionError(
            "the loop at %s:%s would add %s%d elements x %d jobs to the run, more"
            " than the %d jobs one loop may add; split the work into batches"
            " (a task that handles a chunk of elements per call)"
            % (
                job.site.get("file"),
                job.site.get("line"),
                "more than " if elements > MAX_COPIES else "",
                min(elements, MAX_COPIES),
                jobs,
                MAX_COPIES,
            )
        )


def _copies(store, job, template: dict, elements: list):
    jobs = template["jobs"]
    loop = template["loop"]
    base = (
        store.reserve_indices(job.run_id, len(elements) * len(jobs))
        if jobs and elements
        else 0
    )
    copies, iterations = [], []
    for number, element in enumerate(elements):
        indices = {
            t["index"]: base + number * len(jobs) + position
            for position, t in enumerate(jobs)
        }
        value = encode(element, "element %d of the loop" % number)
        copy = _Instance(loop, value, indices).copy
        copies += [
            _copy_job(t, copy, indices, job.order + order_key(number, t["index"]))
            for t in jobs
        ]
        iterations.append(
            {
                "values": copy(template["gather"]["values"]),
                "appends": copy(template["gather"]["appends"]),
            }
        )
    return copies, iterations


def _copy_job(template_job: dict, copy, indices: dict, order: str) -> JobDocument:
    arguments, references = {}, set()
    for name, value, deferred in template_job["parameters"]:
        # a parameter that held the element stays "deferred" even once the
        # element is in place, so that the worker checks it as it checks results
        arguments[name] = copied = copy(value)
        if deferred or has_placeholders(copied):
            references.add(name)
    dependencies = [
        d if isinstance(d, int) else copy(d)["job"]
        for d in template_job["dependencies"]
    ]
    return JobDocument(
        indices[template_job["index"]],
        template_job["elf_uid"],
        template_job["task"],
        template_job["task_revision"],
        template_job["site"],
        arguments,
        dependencies,
        template_job["max_attempts"],
        copy(template_job["guard"]),
        order,
        references,
    )


class _Instance:
    """One copy of a template: its element, and where its jobs went."""

    def __init__(self, loop: str, element, indices: dict):
        self.loop = loop
        self.element = element
        self.indices = indices

    def copy(self, data):
        kind = type(data)
        if kind is list:
            if not {list, dict} & set(map(type, data)):
                return data
            return [self.copy(item) for item in data]
        if kind is not dict:
            return data
        if data.get("loop") == self.loop:
            if data.get(TAG) == "element":
                return self.element
            if data.get(TAG) == "ref":
                return {
                    TAG: "ref",
                    "job": self.indices[data["job"]],
                    "key": data["key"],
                }
        return {key: self.copy(item) for key, item in data.items()}


def gather(store, job, parameters: dict) -> dict:
    iterations = parameters["iterations"]
    developer = _developer(store, job, {"i": iterations})
    developed = developer.develop(iterations, lenient=True)
    last, appended = {}, {}
    if developed:
        for name, value in developed[-1]["values"].items():
            last[name] = _stored(value)
    for iteration in developed:
        for name, items in iteration["appends"].items():
            kept = appended.setdefault(name, [])
            for guard, item, spread in items:
                if guard is None or _true(guard):
                    kept += _spread(item) if spread else [_stored(item)]
    for name in parameters.get("grown", ()):
        appended.setdefault(name, [])
    return {"count": len(developed), "last": last, "appended": appended}


def _spread(items) -> list:
    """The items of an ``extend`` by a task result (or an inner loop's)."""
    if _poisoned(items) and not isinstance(items, list):
        return [_stored(items)]
    try:
        return [_stored(item) for item in items]
    except TypeError:
        raise ExecutionError(
            "list.extend() in a loop over a task result was given %s %r, which"
            " is not iterable" % (type(items).__name__, items)
        ) from None


def _true(guard) -> bool:
    return not isinstance(guard, (SkippedMarker, FailedMarker)) and bool(guard)


def _stored(value):
    """A value ready for the result: a skipped or failed one is kept as a
    failure that is raised only where it is used."""
    if _poisoned(value):
        return {
            TAG: "failed",
            "type": "SkippedValue",
            "message": "this value"
            " comes from a job that was skipped or a branch that failed",
            "site": [0, 0],
        }
    return encode(value, "a gathered value")


def _poisoned(value) -> bool:
    return holds(value, lambda item: isinstance(item, (SkippedMarker, FailedMarker)))
