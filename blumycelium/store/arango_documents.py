"""Documents of the ArangoDB mycelium, made from ``base.py``'s dataclasses and
read back into its records.

Values (parameters, results, a run's arguments and result template, guards)
are kept as JSON text in a ``json`` attribute, as the SQLite mycelium keeps
them, and not as nested attributes: ArangoDB holds numbers as VelocyPack
and may write an integral double back without its fraction (a stored 1.0
read back as the integer 1), while ``blumycelium.values`` promises every
value back exactly; text is never reinterpreted. Everything else (statuses,
counters, call sites) is a plain attribute, to filter and index on and to
browse in the web interface.

A value whose text exceeds :data:`SAFE_VALUE_CHARACTERS` is cut into Chunks
documents (``<p|r>-<owner key>-<n>``) that its document lists in order under
``chunks``; readers join them back. The text is ASCII (``ensure_ascii``), so
characters are bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields

from .arango_keys import document_key, job_key
from .base import (
    ClaimedJob,
    FailureDocument,
    JobDocument,
    JobRecord,
    ParameterDocument,
    RunDocument,
    RunRecord,
    WorkerDocument,
    WorkerRecord,
    order_key,
)

SAFE_VALUE_CHARACTERS = 16 * 1024 * 1024
# What a skipped job's result reads as (see values.SkippedMarker).
SKIPPED = {"__bm__": "skipped"}


def dumps(value) -> str:
    """JSON text of a JSON-ready value; ValueError for NaN or infinity."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def loads(text):
    return None if text is None else json.loads(text)


# -- values ------------------------------------------------------------------


def value_fields(text: str, kind: str, key: str, run: str, limit: int) -> tuple:
    """The attributes holding ``text`` in a document, and the chunk
    documents it needs (none while it is at most ``limit`` long)."""
    if len(text) <= limit:
        return {"json": text, "chunks": []}, []
    chunks = [
        {
            "_key": "%s-%s-%d" % (kind, key, number),
            "owner": key,
            "run": run,
            "n": number,
            "text": text[start : start + limit],
        }
        for number, start in enumerate(range(0, len(text), limit))
    ]
    return {"json": None, "chunks": [c["_key"] for c in chunks]}, chunks


def stored_value(document: dict, chunk_texts: dict):
    """The value a parameter or result document holds."""
    keys = document.get("chunks") or []
    text = "".join(chunk_texts[key] for key in keys) if keys else document["json"]
    return json.loads(text)


# -- runs and jobs -----------------------------------------------------------


def run_document(key: str, run: RunDocument, now: float) -> dict:
    finished = not run.jobs
    return {
        "_key": key,
        "flow": run.flow,
        "flow_revision": run.flow_revision,
        "run_key": run.run_key,
        "arguments": dumps(run.arguments),
        "result": dumps(run.result),
        "result_dependencies": sorted(run.result_dependencies),
        "status": "done" if finished else "running",
        "jobs_total": len(run.jobs),
        "jobs_unfinished": len(run.jobs),
        "jobs_failed": 0,
        "next_index": len(run.jobs),
        "submitted_at": now,
        "finished_at": now if finished else None,
    }


def flow_document(run: RunDocument, now: float) -> dict:
    return {
        "_key": document_key(run.flow_revision),
        "revision": run.flow_revision,
        "name": run.flow,
        "file": run.flow_file,
        "line": run.flow_line,
        "source": run.flow_source,
        "registered_at": now,
    }


def job_document(run: str, job: JobDocument, now: float, state=None) -> dict:
    """``state``: (status, unfinished dependencies, skipped dependencies);
    by default ready, or pending on every dependency."""
    status, unfinished, skipped = state or (
        "pending" if job.dependencies else "ready",
        len(job.dependencies),
        0,
    )
    return {
        "_key": job_key(run, job.index),
        "run": run,
        "index": job.index,
        "elf_uid": job.elf_uid,
        "task": job.task,
        "task_revision": job.task_revision,
        "site": job.site,
        "status": status,
        "unfinished_dependencies": unfinished,
        "dependency_count": len(job.dependencies),
        "skipped_dependencies": skipped,
        "attempts": 0,
        "attempt_base": 0,
        "max_attempts": job.max_attempts,
        "worker": None,
        "lease_expires_at": None,
        "not_before": None,
        "guard": None if job.guard is None else dumps(job.guard),
        "decided": job.guard is None and skipped == 0,
        "order": job.order or order_key(job.index),
        "created_at": now,
        "started_at": None,
        "finished_at": None,
    }


def parameter_documents(run: str, index: int, parameters, texts, limit: int):
    """Parameter documents of one job, their JobParameters edges and chunks."""
    owner = job_key(run, index)
    documents, edges, chunks = [], [], []
    for position, (parameter, text) in enumerate(zip(parameters, texts)):
        key = "%s-%d" % (owner, position)
        fields, pieces = value_fields(text, "p", key, run, limit)
        documents.append(
            {
                "_key": key,
                "job": owner,
                "run": run,
                "position": position,
                "name": parameter.name,
                "has_refs": parameter.has_refs,
                **fields,
            }
        )
        edges.append(
            {
                "_key": key,
                "_from": "Jobs/" + owner,
                "_to": "Parameters/" + key,
                "run": run,
                "name": parameter.name,
            }
        )
        chunks += pieces
    return documents, edges, chunks


def dependency_edges(run: str, index: int, dependencies) -> list[dict]:
    """JobToJob edges from each of ``dependencies`` to job ``index``."""
    return [
        {
            "_key": "%s-%d-%d" % (run, dependency, index),
            "_from": "Jobs/" + job_key(run, dependency),
            "_to": "Jobs/" + job_key(run, index),
            "run": run,
            "from_index": dependency,
            "to_index": index,
        }
        for dependency in dependencies
    ]


def result_documents(job: dict, text: str, now: float, limit: int) -> tuple:
    """The result document of the finished ``job`` and its chunks."""
    fields, chunks = value_fields(text, "r", job["_key"], job["run"], limit)
    document = {
        "_key": job["_key"],
        "job": job["_key"],
        "run": job["run"],
        "index": job["index"],
        "stored_at": now,
        **fields,
    }
    return document, chunks


def failure_digest(failure: FailureDocument) -> str:
    """The key deduplicating failures: a hash of type, message and traceback,
    the same as the SQLite mycelium's traceback hash."""
    parts = (failure.exception_type, failure.message, failure.traceback)
    data = b"".join(part.encode("utf-8", "surrogatepass") + b"\0" for part in parts)
    return hashlib.sha256(data).hexdigest()[:32]


def failure_documents(
    job: str, run: str, attempt: int, failure: FailureDocument, now: float
) -> tuple[dict, dict]:
    """The deduplicated failure (keyed by its traceback hash) and the
    JobFailures edge linking it to the attempt."""
    digest = failure_digest(failure)
    document = {
        "_key": digest,
        "exception_type": failure.exception_type,
        "message": failure.message,
        "traceback": failure.traceback,
        "first_seen": now,
    }
    link = {
        "_key": "%s-%d" % (job, attempt),
        "_from": "Jobs/" + job,
        "_to": "Failures/" + digest,
        "job": job,
        "run": run,
        "attempt": attempt,
        "task_revision": failure.task_revision,
        "created_at": now,
    }
    return document, link


def worker_document(worker: WorkerDocument, now: float) -> dict:
    fields = {
        "started_at": now,
        "heartbeat_at": now,
        "job_id": None,
        "stopped_at": None,
    }
    return dict(asdict(worker), _key=document_key(worker.id), **fields)


def elf_documents(elf, tasks, now: float) -> tuple[dict, list[dict], list[dict]]:
    """The MachineElves document, its revision, and the task revisions."""
    document = {
        "_key": document_key(elf.uid),
        "uid": elf.uid,
        "class_name": elf.class_name,
        "module": elf.module,
        "documentation": elf.documentation,
        "revision": elf.revision,
        "registered_at": now,
        "updated_at": now,
    }
    revision = {
        "_key": document_key(elf.uid, elf.revision),
        "elf_uid": elf.uid,
        "revision": elf.revision,
        "class_name": elf.class_name,
        "source": elf.source,
        "registered_at": now,
    }
    task_revisions = [
        {
            "_key": document_key(task.revision),
            "revision": task.revision,
            "elf_class": task.elf_class,
            "task": task.name,
            "source": task.source,
            "documentation": task.documentation,
            "signature": task.signature,
            "result_keys": None
            if task.result_keys is None
            else dumps(task.result_keys),
            "registered_at": now,
        }
        for task in tasks
    ]
    return document, [revision], task_revisions


# -- records -----------------------------------------------------------------


def _record(cls, document: dict, **given):
    """The dataclass ``cls`` from the document's attributes of the same
    names; ``given`` fields take precedence, missing ones their default."""
    names = [f.name for f in fields(cls) if f.name not in given]
    return cls(**given, **{name: document[name] for name in names if name in document})


def job_record(document: dict) -> JobRecord:
    return _record(JobRecord, document, id=document["_key"], run_id=document["run"])


def run_record(document: dict) -> RunRecord:
    return _record(
        RunRecord,
        document,
        id=document["_key"],
        arguments=loads(document["arguments"]),
        result=loads(document["result"]),
    )


def claimed_job(document: dict) -> ClaimedJob:
    return _record(
        ClaimedJob,
        document,
        id=document["_key"],
        run_id=document["run"],
        attempt=document["attempts"],
        guard=loads(document["guard"]),
    )


def parameter_record(document: dict, chunk_texts: dict) -> ParameterDocument:
    return ParameterDocument(
        document["name"], stored_value(document, chunk_texts), document["has_refs"]
    )


def worker_record(document: dict) -> WorkerRecord:
    return _record(WorkerRecord, document)
