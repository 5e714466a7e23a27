"""Fan-out in the ArangoDB mycelium: adding a loop's copies to a running run.

The same steps as the SQLite mycelium (see ``sqlite_expansion.py``), in one
stream transaction: a worker reserves job indices on the run document
(``next_index``, one AQL update), then :meth:`ArangoExpansion.expand_job`

1. completes that attempt of the expand job (nothing happens unless it is
   the running attempt; nothing more if the run was cancelled meanwhile);
2. reads the status of the existing jobs the copies and the gather job
   wait for, and inserts the copies (a copy waiting for a finished job
   counts it finished or skipped; one waiting for a failed job, even through
   other copies, is ``upstream_failed`` at once), their parameters and edges;
3. gives the gather job its parameters and the jobs it waits for;
4. grows the run's counters, releases the expand job's dependents and counts
   the run down.

Copy keys come from the reserved indices, so they never collide with a key
written before, and a retried transaction writes the same ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import NotFoundError
from . import arango_queries as aql
from .arango_connection import statement
from .arango_documents import dependency_edges, dumps
from .arango_keys import job_key

FINISHED = ("done", "skipped")
BROKEN = ("failed", "upstream_failed", "cancelled")
EXPAND_COLLECTIONS = (
    "Jobs",
    "Runs",
    "Results",
    "Parameters",
    "JobParameters",
    "JobToJob",
    "Chunks",
)


class ArangoExpansion:
    """The ArangoDB backend's index reservations and expansions."""

    def reserve_indices(self, run_id: str, count: int) -> int:
        rows = self._query(
            "reserve job indices in run %s" % run_id,
            aql.RESERVE,
            run=run_id,
            count=count,
        )
        if not rows:
            raise NotFoundError("no run %r in the mycelium %s" % (run_id, self.url))
        return rows[0]

    def expand_job(
        self,
        job_id,
        attempt,
        jobs,
        gather_index,
        gather_parameters,
        gather_dependencies,
    ) -> bool:
        now = time.time()
        texts = [[dumps(p.value) for p in job.parameters] for job in jobs]
        gather_texts = [dumps(p.value) for p in gather_parameters]
        result = dumps({"count": len(jobs)})
        gather = _Gather(
            gather_index, gather_parameters, gather_texts, list(gather_dependencies)
        )

        def body(trx):
            job = self._finish(trx, job_id, attempt, "done", now)
            if job is None:
                return False
            self._store_result(trx, job, result, now)
            run = job["run"]
            if statement(trx, aql.RUN_STATUS, run=run)[0] == "cancelled":
                return True  # nothing of a cancelled run starts
            known = self._known_statuses(trx, run, jobs, gather.dependencies)
            states, broken = copy_states(jobs, known)
            self._insert_jobs(trx, run, jobs, texts, now, states)
            broken |= {index for index, status in known.items() if status in BROKEN}
            new = {job.index for job in jobs}
            gather_broken = self._wire_gather(trx, run, gather, known, new, broken, now)
            statement(
                trx,
                aql.GROW_RUN,
                run=run,
                total=len(jobs),
                unfinished=len(jobs) - len(broken & new) - gather_broken,
            )
            self._release_dependents(trx, job_id, skipped=False)
            self._count_down(trx, run, 1, 0, now)
            return True

        return self._transaction(
            "expand job %s" % job_id, body, write=EXPAND_COLLECTIONS
        )

    def _known_statuses(self, trx, run: str, jobs, extra) -> dict[int, str]:
        """Status, by index, of the existing jobs the copies and the gather
        job name."""
        new = {job.index for job in jobs}
        wanted = {d for job in jobs for d in job.dependencies} | set(extra)
        wanted -= new
        if not wanted:
            return {}
        keys = [job_key(run, index) for index in sorted(wanted)]
        return dict(statement(trx, aql.STATUSES, keys=keys)[0])

    def _wire_gather(self, trx, run, gather, known, new, broken, now) -> int:
        """Give the gather job its parameters and dependencies. When one of
        them failed, it is upstream_failed, and so is what waits for it: how
        many jobs that finished (0 when none failed)."""
        key = job_key(run, gather.index)
        statement(trx, aql.REMOVE_PARAMETERS, job=key)
        statement(trx, aql.REMOVE_PARAMETER_EDGES, job="Jobs/" + key)
        self._insert_parameters(
            trx, run, [(gather.index, gather.parameters, gather.texts)]
        )
        self._insert(
            trx,
            "JobToJob",
            dependency_edges(run, gather.index, gather.dependencies),
            "ignore",
        )
        statuses = [known.get(d, "done") for d in gather.dependencies]
        is_broken = not broken.isdisjoint(gather.dependencies)
        statement(
            trx,
            aql.WIRE_GATHER,
            job=key,
            waits=sum(
                d in new or status not in FINISHED
                for d, status in zip(gather.dependencies, statuses)
            ),
            dependencies=len(gather.dependencies),
            skipped=statuses.count("skipped"),
            broken=is_broken,
            now=now,
        )
        if not is_broken:
            return 0
        return 1 + statement(trx, aql.FAIL_DOWNSTREAM, job="Jobs/" + key, now=now)[0]


@dataclass
class _Gather:
    """The gather job of an expansion: its index, its new parameters (and
    their JSON texts), and the jobs it waits for."""

    index: int
    parameters: list
    texts: list[str]
    dependencies: list[int]


def copy_states(jobs, known: dict[int, str]) -> tuple[dict, set]:
    """The state of each copy (status, unfinished, skipped dependencies) and
    the copies broken by a failure upstream; copies come after the copies
    they wait for."""
    states: dict = {}
    broken: set = set()
    for job in jobs:
        before = [known[d] for d in job.dependencies if d in known]
        unfinished = len(job.dependencies) - sum(s in FINISHED for s in before)
        waits_on_failure = any(s in BROKEN for s in before)
        if waits_on_failure or not broken.isdisjoint(job.dependencies):
            broken.add(job.index)
            status = "upstream_failed"
        else:
            status = "pending" if unfinished else "ready"
        states[job.index] = (status, unfinished, before.count("skipped"))
    return states, broken
