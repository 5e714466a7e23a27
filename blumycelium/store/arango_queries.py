"""The AQL statements of the ArangoDB mycelium, in one place.

Each statement modifies one collection at most once and reads nothing of it
afterwards (AQL's rule); a step that must read what another wrote is a
statement of its own in the same stream transaction. Statements that may
match many documents inside a transaction return one row holding a list, so
that a single answer carries all of it.

AQL orders ``null`` below every number: a comparison with a timestamp that
may be null states the null case explicitly.
"""

from __future__ import annotations

# How deep a walk downstream may go: more than any run has jobs in a chain.
MAX_DEPTH = 1_000_000

# -- the worker's side -------------------------------------------------------

CLAIM = """
FOR j IN Jobs
  FILTER j.elf_uid == @elf AND j.status == "ready" AND j.decided == true
  FILTER j.not_before == null OR j.not_before <= @now
  SORT j.run, j.order
  LIMIT 1
  UPDATE j WITH {
    status: "running", attempts: j.attempts + 1, started_at: @now,
    worker: @worker, lease_expires_at: @now + @lease, not_before: null
  } IN Jobs OPTIONS {ignoreRevs: false}
  LET parameters = (
    FOR p IN Parameters FILTER p.job == NEW._key SORT p.position RETURN p
  )
  RETURN {job: NEW, parameters: parameters}
"""

FINISH = """
FOR j IN Jobs
  FILTER j._key == @job AND j.status == "running" AND j.attempts == @attempt
  UPDATE j WITH {status: @status, finished_at: @now, lease_expires_at: null} IN Jobs
  RETURN KEEP(NEW, "_key", "run", "index")
"""

SKIP = """
FOR j IN Jobs
  FILTER j._key == @job
  FILTER (j.status == "ready" AND j.decided == false)
    OR (j.status == "running" AND j.attempts == @attempt)
  UPDATE j WITH {status: "skipped", finished_at: @now, lease_expires_at: null} IN Jobs
  RETURN KEEP(NEW, "_key", "run", "index")
"""

DECIDE_RUNS = """
FOR j IN Jobs
  FILTER j._key == @job AND j.status == "ready" AND j.decided == false
  UPDATE j WITH {decided: true} IN Jobs
  RETURN true
"""

REQUEUE = """
FOR j IN Jobs
  FILTER j._key == @job AND j.status == "running" AND j.attempts == @attempt
  UPDATE j WITH {
    status: "ready", worker: null, lease_expires_at: null, not_before: @not_before
  } IN Jobs
  RETURN true
"""

GIVE_BACK = """
FOR j IN Jobs
  FILTER j._key == @job AND j.status == "running" AND j.attempts == @attempt
  UPDATE j WITH {
    status: "ready", worker: null, started_at: null, lease_expires_at: null
  } IN Jobs
"""

# One dependency of each dependent finished (or was skipped): those left
# waiting for none are ready, and decided at once unless a guard or a
# skipped dependency must be looked at first.
RELEASE_DEPENDENTS = """
LET targets = (
  FOR e IN JobToJob FILTER e._from == @job RETURN PARSE_IDENTIFIER(e._to).key
)
FOR j IN Jobs
  FILTER j._key IN targets
  LET opens = j.unfinished_dependencies == 1 AND j.status == "pending"
  UPDATE j WITH {
    unfinished_dependencies: j.unfinished_dependencies - 1,
    skipped_dependencies: j.skipped_dependencies + @skipped,
    decided: opens
      ? (j.guard == null AND j.skipped_dependencies + @skipped == 0)
      : j.decided,
    status: opens ? "ready" : j.status
  } IN Jobs
"""

COUNT_DOWN = """
FOR r IN Runs
  FILTER r._key == @run AND r.status == "running"
  LET left = r.jobs_unfinished - @finished
  LET failed = r.jobs_failed + @failed
  UPDATE r WITH {
    jobs_unfinished: left,
    jobs_failed: failed,
    status: left > 0 ? r.status : (failed > 0 ? "failed" : "done"),
    finished_at: left > 0 ? r.finished_at : @now
  } IN Runs
"""

FAIL_DOWNSTREAM = (
    """
LET targets = (
  FOR v IN 1..%d OUTBOUND @job JobToJob
    OPTIONS {order: "bfs", uniqueVertices: "global"}
    FILTER v.status IN ["pending", "ready"]
    RETURN v._key
)
LET failed = (
  FOR j IN Jobs
    FILTER j._key IN targets
    UPDATE j WITH {status: "upstream_failed", finished_at: @now} IN Jobs
    RETURN true
)
RETURN LENGTH(failed)
"""
    % MAX_DEPTH
)

RENEW_LEASE = """
LET renewed = (
  FOR j IN Jobs
    FILTER j._key == @job AND j.status == "running" AND j.attempts == @attempt
    UPDATE j WITH {lease_expires_at: @now + @lease} IN Jobs
    RETURN true
)
LET beat = (
  FOR w IN Workers
    FILTER w._key == @worker
    UPDATE w WITH {
      heartbeat_at: @now, job_id: LENGTH(renewed) > 0 ? @job : null
    } IN Workers
    RETURN true
)
RETURN LENGTH(renewed) > 0
"""

# -- runs --------------------------------------------------------------------

RUN_FOR_KEY = 'RETURN DOCUMENT("RunKeys", @key).run'

RUN_STATUS = 'RETURN DOCUMENT("Runs", @run).status'

RESERVE = """
FOR r IN Runs
  FILTER r._key == @run
  UPDATE r WITH {next_index: r.next_index + @count} IN Runs
  RETURN OLD.next_index
"""

GROW_RUN = """
FOR r IN Runs
  FILTER r._key == @run
  UPDATE r WITH {
    jobs_total: r.jobs_total + @total,
    jobs_unfinished: r.jobs_unfinished + @unfinished
  } IN Runs
"""

STATUSES = """
RETURN (
  FOR key IN @keys
    LET j = DOCUMENT("Jobs", key)
    FILTER j != null
    RETURN [j.index, j.status]
)
"""

WIRE_GATHER = """
FOR j IN Jobs
  FILTER j._key == @job
  UPDATE j WITH {
    unfinished_dependencies: j.unfinished_dependencies + @waits,
    dependency_count: j.dependency_count + @dependencies,
    skipped_dependencies: j.skipped_dependencies + @skipped,
    status: @broken ? "upstream_failed" : j.status,
    finished_at: @broken ? @now : j.finished_at
  } IN Jobs
"""

REMOVE_PARAMETERS = """
FOR p IN Parameters FILTER p.job == @job REMOVE p IN Parameters
"""

REMOVE_PARAMETER_EDGES = """
FOR e IN JobParameters FILTER e._from == @job REMOVE e IN JobParameters
"""

# -- operators' actions ------------------------------------------------------

CANCEL_JOBS = """
LET cancelled = (
  FOR j IN Jobs
    FILTER j.run == @run AND j.status IN ["pending", "ready"]
    UPDATE j WITH {status: "cancelled", finished_at: @now} IN Jobs
    RETURN true
)
RETURN LENGTH(cancelled)
"""

CANCEL_RUN = """
FOR r IN Runs
  FILTER r._key == @run AND r.status == "running"
  UPDATE r WITH {
    status: "cancelled",
    jobs_unfinished: r.jobs_unfinished - @cancelled,
    finished_at: @now
  } IN Runs
"""

FAILED_JOBS = """
RETURN (
  FOR j IN Jobs FILTER j.run == @run AND j.status == "failed" RETURN j._key
)
"""

RETRY = """
FOR j IN Jobs
  FILTER j._key IN @keys
  UPDATE j WITH {
    status: "ready", attempt_base: j.attempts, finished_at: null,
    worker: null, not_before: null
  } IN Jobs
"""

DOWNSTREAM = (
    """
RETURN UNIQUE(FLATTEN(
  FOR start IN @starts
    RETURN (
      FOR v IN 1..%d OUTBOUND CONCAT("Jobs/", start) JobToJob
        OPTIONS {order: "bfs", uniqueVertices: "global"}
        RETURN v._key
    )
))
"""
    % MAX_DEPTH
)

HOLD_AGAIN = """
LET held = (
  FOR j IN Jobs
    FILTER j._key IN @keys AND j.status == "upstream_failed"
    UPDATE j WITH {
      status: "pending", finished_at: null,
      decided: j.guard == null AND j.skipped_dependencies == 0
    } IN Jobs
    RETURN NEW._key
)
RETURN held
"""

UNFINISHED_DEPENDENCIES = """
RETURN (
  FOR key IN @keys
    LET waits = LENGTH(
      FOR e IN JobToJob
        FILTER e._to == CONCAT("Jobs/", key)
        FILTER DOCUMENT(e._from).status NOT IN ["done", "skipped"]
        RETURN true
    )
    RETURN {_key: key, unfinished_dependencies: waits}
)
"""

UPDATE_JOBS = "FOR u IN @updates UPDATE u IN Jobs"

RETRY_RUN = """
FOR r IN Runs
  FILTER r._key == @run
  UPDATE r WITH {
    status: "running", finished_at: null,
    jobs_failed: r.jobs_failed - @failed,
    jobs_unfinished: r.jobs_unfinished + @unfinished
  } IN Runs
"""

PURGEABLE_RUNS = """
RETURN (
  FOR r IN Runs
    FILTER r.status IN ["done", "failed", "cancelled"]
    FILTER r.finished_at != null AND r.finished_at < @before
    FILTER LENGTH(
      FOR j IN Jobs FILTER j.run == r._key AND j.status == "running" LIMIT 1
        RETURN true
    ) == 0
    RETURN r._key
)
"""

REMOVE_OF_RUNS = "FOR d IN @@collection FILTER d.run IN @runs REMOVE d IN @@collection"

REMOVE_RUNS = "FOR r IN Runs FILTER r._key IN @runs REMOVE r IN Runs"

REMOVE_UNUSED_FAILURES = """
FOR f IN Failures
  FILTER LENGTH(FOR l IN JobFailures FILTER l._to == f._id LIMIT 1 RETURN true) == 0
  REMOVE f IN Failures
"""

# -- leases and workers ------------------------------------------------------

ANY_EXPIRED = """
FOR j IN Jobs
  FILTER j.status == "running" AND j.lease_expires_at != null
  FILTER j.lease_expires_at < @now
  LIMIT 1
  RETURN true
"""

EXPIRED = """
RETURN (
  FOR j IN Jobs
    FILTER j.status == "running" AND j.lease_expires_at != null
    FILTER j.lease_expires_at < @now
    RETURN [j._key, j.attempts, j.attempt_base, j.max_attempts, j.worker, j.run]
)
"""

HEARTBEAT = """
FOR w IN Workers
  FILTER w._key == @worker
  UPDATE w WITH {heartbeat_at: @now, job_id: @job} IN Workers
"""

STOP_WORKER = """
FOR w IN Workers
  FILTER w._key == @worker
  UPDATE w WITH {stopped_at: @now, job_id: null} IN Workers
"""

LIST_WORKERS = "FOR w IN Workers SORT w.started_at DESC RETURN w"

# -- elves -------------------------------------------------------------------

UPSERT_ELF = """
LET elf = @elf
UPSERT {_key: elf._key}
  INSERT elf
  UPDATE {
    class_name: elf.class_name, module: elf.module,
    documentation: elf.documentation, revision: elf.revision,
    updated_at: elf.updated_at
  }
  IN MachineElves
"""

# A revision is written once; a later registration only fills in a source
# the first one left out.
UPSERT_REVISIONS = """
FOR d IN @documents
  UPSERT {_key: d._key}
    INSERT d
    UPDATE {source: d.source != null ? d.source : OLD.source}
    IN @@collection
"""

ELVES = """
FOR e IN MachineElves
  %s
  RETURN MERGE(
    KEEP(e, "uid", "class_name", "module", "documentation", "revision",
         "registered_at", "updated_at"),
    {revisions: (
      FOR r IN MachineElvesRevisions
        FILTER r.elf_uid == e.uid
        SORT r.registered_at
        RETURN KEEP(r, "revision", "class_name", "source", "registered_at")
    )}
  )
"""

ONE_ELF = ELVES % "FILTER e._key == @key"
ALL_ELVES = ELVES % "SORT e.uid"

# -- reading -----------------------------------------------------------------

DOCUMENT = "RETURN DOCUMENT(@collection, @key)"

JOB_PARAMETERS = """
FOR p IN Parameters FILTER p.job == @job SORT p.position RETURN p
"""

RESULTS = """
FOR key IN @keys
  LET j = DOCUMENT("Jobs", key)
  FILTER j != null
  LET r = DOCUMENT("Results", key)
  FILTER r != null OR j.status == "skipped"
  RETURN {index: j.index, result: r}
"""

CHUNKS = 'FOR key IN @keys RETURN DOCUMENT("Chunks", key).text'

COUNT_JOBS = """
FOR j IN Jobs
  FILTER j.run == @run
  COLLECT status = j.status WITH COUNT INTO n
  RETURN [status, n]
"""

UNDECIDED = """
FOR j IN Jobs
  FILTER j.status == "ready" AND j.decided == false
  SORT j.run, j.order
  LIMIT @limit
  RETURN j
"""

LIST_RUNS = "FOR r IN Runs SORT r._key DESC LIMIT @limit RETURN r"

LIST_EDGES = """
FOR e IN JobToJob
  FILTER e.run == @run
  SORT e.to_index, e.from_index
  RETURN [e.from_index, e.to_index]
"""

FAILURES = """
FOR l IN JobFailures
  %s
  SORT l.created_at
  LET f = DOCUMENT(l._to)
  RETURN {
    id: f._key, job_id: l.job, attempt: l.attempt,
    exception_type: f.exception_type, message: f.message,
    traceback: f.traceback, traceback_hash: f._key,
    task_revision: l.task_revision, created_at: l.created_at
  }
"""


def filtered(template: str, clauses: list[str]) -> str:
    """``template`` with its ``%s`` made one FILTER of ``clauses`` (or none)."""
    return template % ("FILTER " + " AND ".join(clauses) if clauses else "")


LIST_JOBS = """
FOR j IN Jobs
  %s
  SORT j.run, j.order
  RETURN j
"""
