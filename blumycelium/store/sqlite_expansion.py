"""Fan-out in the SQLite mycelium: adding a loop's copies to a running run.

A worker that runs an *expand* job first reserves job indices for the copies
(:meth:`ExpansionMixin.reserve_indices`, a counter on the run: indices left
unused by a worker that died are only gaps), then calls
:meth:`ExpansionMixin.expand_job`, which in one transaction:

1. completes that attempt of the expand job (nothing happens if the attempt
   is not the running one: its lease expired and another worker has it; and
   nothing more if the run was cancelled meanwhile);
2. inserts the copies, their parameters and edges; a copy waiting for a job
   that already finished counts it as finished (or skipped), and a copy
   waiting for a failed one is ``upstream_failed`` at once;
3. gives the gather job its parameters and the copies it waits for;
4. releases the expand job's dependents (the gather job) and counts the run.
"""

from __future__ import annotations

import time

from ..values import dumps
from .sqlite_connection import IN_LIST, id_list
from .sqlite_rows import JsonTexts, job_rows, stored_parameters

_FINISHED = ("done", "skipped")
_BROKEN = ("failed", "upstream_failed", "cancelled")


class ExpansionMixin:
    """The SQLite backend's index reservations and expansions."""

    def reserve_indices(self, run_id: str, count: int) -> int:
        with self._write() as connection:
            row = connection.execute(
                "UPDATE runs SET next_index = next_index + ? WHERE id = ?"
                " RETURNING next_index - ?",
                (count, int(run_id), count),
            ).fetchone()
        return row[0]

    def expand_job(
        self,
        job_id,
        attempt,
        jobs,
        gather_index,
        gather_parameters,
        gather_dependencies,
    ) -> bool:
        identifier = int(job_id)
        now = time.time()
        with self._write() as connection:
            text = dumps({"count": len(jobs)})
            run_id = self._finish_done(connection, identifier, attempt, text, now)
            if run_id is None:
                return False
            (status,) = connection.execute(
                "SELECT status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if status == "cancelled":  # nothing of a cancelled run starts
                return True
            known = self._statuses(connection, run_id, jobs, gather_dependencies)
            ids, broken = self._insert_copies(connection, run_id, jobs, known, now)
            broken |= {d for d, (_, status) in known.items() if status in _BROKEN}
            gather_broken = self._wire_gather(
                connection,
                run_id,
                gather_index,
                gather_parameters,
                gather_dependencies,
                ids,
                known,
                broken,
                now,
            )
            connection.execute(
                "UPDATE runs SET jobs_total = jobs_total + ?, jobs_unfinished ="
                " jobs_unfinished + ? WHERE id = ?",
                (len(jobs), len(jobs) - len(broken & set(ids)) - gather_broken, run_id),
            )
            self._release_dependents(connection, [identifier], skipped=False)
            self._count_down(connection, run_id, 1, 0, now)
        return True

    def _statuses(self, connection, run_id: int, jobs, extra) -> dict:
        """(id, status) of the existing jobs the copies and the gather name."""
        new = {job.index for job in jobs}
        wanted = {d for job in jobs for d in job.dependencies} | set(extra)
        wanted -= new
        if not wanted:
            return {}
        rows = connection.execute(
            "SELECT idx, id, status FROM jobs WHERE run_id = ? AND idx IN (%s)"
            % IN_LIST,
            (run_id, id_list(sorted(wanted))),
        ).fetchall()
        return {index: (job, status) for index, job, status in rows}

    def _insert_copies(self, connection, run_id, jobs, known, now):
        """Insert the copies; a copy waiting (even through other copies) for
        a job that failed is upstream_failed at once."""
        states, broken = {}, set()
        for job in jobs:
            old = [known[d][1] for d in job.dependencies if d in known]
            unfinished = len(job.dependencies) - sum(s in _FINISHED for s in old)
            skipped = sum(s == "skipped" for s in old)
            if any(s in _BROKEN for s in old) or broken & set(job.dependencies):
                states[job.index] = ("upstream_failed", unfinished, skipped)
                broken.add(job.index)
            else:
                states[job.index] = (
                    "pending" if unfinished else "ready",
                    unfinished,
                    skipped,
                )
        ids = self._insert_jobs(connection, run_id, jobs, job_rows(jobs, now, states))
        every = {**{index: job for index, (job, _) in known.items()}, **ids}
        connection.executemany(
            "INSERT INTO job_edges VALUES (?, ?)",
            [(every[d], ids[job.index]) for job in jobs for d in job.dependencies],
        )
        return ids, broken

    def _wire_gather(
        self,
        connection,
        run_id,
        gather_index,
        parameters,
        dependencies,
        ids,
        known,
        broken,
        now,
    ) -> int:
        """Give the gather job its parameters and dependencies. When one of
        them failed, it is upstream_failed, and so is what waits for it: how
        many jobs that finished (0 when none failed)."""
        gather = connection.execute(
            "SELECT id FROM jobs WHERE run_id = ? AND idx = ?", (run_id, gather_index)
        ).fetchone()[0]
        inline, table = stored_parameters(
            {p.name: p.value for p in parameters},
            {p.name for p in parameters if p.has_refs},
            JsonTexts(),
        )
        connection.execute(
            "UPDATE jobs SET parameters = ? WHERE id = ?", (inline, gather)
        )
        connection.execute("DELETE FROM parameters WHERE job_id = ?", (gather,))
        connection.executemany(
            "INSERT INTO parameters VALUES (?, ?, ?, ?, ?)",
            [(gather, *row) for row in table],
        )
        every = {**{index: job for index, (job, _) in known.items()}, **ids}
        waits = [
            d
            for d in dependencies
            if d in ids or known.get(d, (0, "done"))[1] not in _FINISHED
        ]
        skipped = sum(1 for d in dependencies if known.get(d, (0, ""))[1] == "skipped")
        connection.executemany(
            "INSERT OR IGNORE INTO job_edges VALUES (?, ?)",
            [(every[d], gather) for d in dependencies],
        )
        connection.execute(
            "UPDATE jobs SET unfinished_dependencies = unfinished_dependencies + ?,"
            " dependency_count = dependency_count + ?, skipped_dependencies ="
            " skipped_dependencies + ? WHERE id = ?",
            (len(waits), len(dependencies), skipped, gather),
        )
        if not broken & set(dependencies):
            return 0
        connection.execute(
            "UPDATE jobs SET status = 'upstream_failed', finished_at = ? WHERE id = ?",
            (now, gather),
        )
        return 1 + self._mark_downstream(connection, gather, now)
