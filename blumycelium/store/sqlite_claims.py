"""The worker's side of the SQLite mycelium: claims, completions, give-backs.

A worker hands in the jobs it finished and takes its next ones in one
transaction (:meth:`ClaimsMixin.complete_and_claim`). Under one ``BEGIN
IMMEDIATE`` it

1. stores each result, fenced by its attempt, marks the job ``done``,
   releases its dependents and counts its run down (once per run);
2. claims up to ``limit`` claimable jobs of its uids, in program order,
   through the partial index of ready jobs: each becomes an attempt with a
   lease, like a single claim;
3. reads their parameters, which are parsed once the lock is given back.

One transaction per batch instead of two per job is what lets a worker keep
up with SQLite, and lets two workers overlap: each holds the write lock for
a short, bounded time and runs its tasks outside of it. A worker with nothing
to hand in first looks for a claimable job with a plain read, so an idle
worker never takes the write lock.

Only the first job of a batch may have been attempted before (a retry, or a
job whose worker died): if that job kills its worker again, the fresh jobs
claimed with it lose one attempt each, not all of theirs. Jobs claimed and
never started are given back (:meth:`ClaimsMixin.release_jobs`) without
counting an attempt; a job given back after its run was cancelled is
``cancelled``, since nothing of a cancelled run starts.
"""

from __future__ import annotations

import time

from ..values import dumps, loads
from .base import ClaimedJob, Completion, ParameterDocument
from .sqlite_connection import int_id, numbered

_PROBE = (
    "SELECT 1 FROM jobs WHERE elf_uid = ? AND status = 'ready' AND decided = 1"
    " AND coalesce(not_before, 0) <= ? LIMIT 1"
)
_CLAIMABLE = (
    "SELECT id, attempts = attempt_base FROM jobs WHERE elf_uid = ? AND status ="
    " 'ready' AND decided = 1 AND coalesce(not_before, 0) <= ? ORDER BY run_id,"
    " position LIMIT ?"
)
_TAKE = (
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?,"
    " worker = ?, lease_expires_at = ?, not_before = NULL WHERE id IN (%s) AND"
    " status = 'ready' RETURNING id, run_id, idx, elf_uid, task, task_revision,"
    " attempts, site, attempt_base, guard, position, parameters"
)
_FINISH = (  # fenced by each job's attempt
    "UPDATE jobs SET status = 'done', finished_at = ?1, lease_expires_at = NULL"
    " WHERE id IN (%s) AND status = 'running' AND attempts = CASE id %s END"
    " RETURNING id, run_id"
)
_PARAMETERS = (
    "SELECT job_id, name, value, has_refs FROM parameters WHERE job_id IN (%s)"
    " ORDER BY job_id, position"
)
RUN_CANCELLED = "(SELECT status FROM runs WHERE id = jobs.run_id) = 'cancelled'"
_GIVE_BACK = (
    "UPDATE jobs SET status = CASE WHEN %s THEN 'cancelled' ELSE 'ready' END,"
    " finished_at = CASE WHEN %s THEN ? END, attempts = attempts - ?, worker ="
    " NULL, started_at = NULL, lease_expires_at = NULL WHERE id = ? AND status ="
    " 'running' AND attempts = ?" % (RUN_CANCELLED, RUN_CANCELLED)
)
_CURRENT = (
    "SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.id IN (%s)"
    " AND j.status = 'running' AND j.attempts = CASE j.id %s END AND r.status ="
    " 'running'"
)
_SITES: dict[str, dict] = {}  # parsed call sites (see _parsed_site)
_SITES_KEPT = 256


class ClaimsMixin:
    """The SQLite backend's claims, completions and give-backs."""

    def claim_job(
        self, elf_uid: str, worker: str, lease: float = 30.0
    ) -> ClaimedJob | None:
        _, claimed = ClaimsMixin.complete_and_claim(self, [], [elf_uid], worker, lease)
        return claimed[0] if claimed else None

    def complete_job(self, job_id: str, attempt: int, result) -> bool:
        completion = Completion(job_id, attempt, result)
        return ClaimsMixin.complete_and_claim(self, [completion], [], "", 0, 0)[0][0]

    def complete_and_claim(self, completions, elf_uids, worker, lease=30.0, limit=1):
        # the single-job methods above call this very method, whatever a
        # subclass makes of complete_and_claim
        texts = [
            (int_id(c.job_id, "job"), c.attempt, dumps(c.result)) for c in completions
        ]
        if limit < 1:
            elf_uids = []
        if not texts and not self._any_claimable(elf_uids):
            return [], []
        now = time.time()
        with self._write() as connection:
            stored = self._complete(connection, texts, now)
            rows = self._take(connection, elf_uids, worker, lease, limit, now)
            parameters = self._stored_parameters(connection, rows)
        return stored, [self._claimed(row, parameters) for row in rows]

    def _any_claimable(self, elf_uids) -> bool:
        now = time.time()
        return any(self._read(_PROBE, (uid, now)) for uid in elf_uids)

    def _complete(self, connection, texts, now: float) -> list[bool]:
        """Store the results of attempts still running; whether each was."""
        if not texts:
            return []
        ids, attempts, values = _fenced([text[:2] for text in texts], 2)
        done = dict(
            connection.execute(
                _FINISH % (ids, attempts), numbered((now, *values))
            ).fetchall()
        )
        connection.executemany(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
            [
                (identifier, text, now)
                for identifier, _, text in texts
                if identifier in done
            ],
        )
        if done:
            self._release_dependents(connection, list(done), skipped=False)
        finished: dict = {}
        for run_id in done.values():
            finished[run_id] = finished.get(run_id, 0) + 1
        for run_id, count in finished.items():
            self._count_down(connection, run_id, count, 0, now)
        return [identifier in done for identifier, _, _ in texts]

    def _take(self, connection, elf_uids, worker, lease, limit, now) -> list:
        """Claim the jobs of a batch; their rows, in the order to run them."""
        chosen = _choose(connection, elf_uids, limit, now)
        if not chosen:
            return []
        rows = connection.execute(
            _TAKE % ",".join("?" * len(chosen)), (now, worker, now + lease, *chosen)
        ).fetchall()
        order = {identifier: position for position, identifier in enumerate(chosen)}
        rows.sort(key=lambda row: order[row[0]])
        return rows

    def _stored_parameters(self, connection, rows) -> dict:
        """The parameter rows of the claimed jobs whose parameters are not in
        their own row, by job id."""
        found: dict = {row[0]: [] for row in rows if row[-1] is None}
        if found:
            for job_id, *parameter in connection.execute(
                _PARAMETERS % ",".join("?" * len(found)), list(found)
            ):
                found[job_id].append(parameter)
        return found

    def _claimed(self, row, parameters: dict) -> ClaimedJob:
        identifier, run_id, index, elf_uid, task, revision, attempt = row[:7]
        site, base, guard, position, inline = row[7:]
        claimed = ClaimedJob(
            str(identifier),
            str(run_id),
            index,
            elf_uid,
            task,
            revision,
            attempt,
            _parsed_site(site),
            attempt_base=base,
            guard=None if guard is None else loads(guard),
            order=position,
        )
        try:
            claimed.parameters = parameter_documents(
                inline, parameters.get(identifier, ())
            )
        except ValueError as error:
            claimed.problem = "the stored parameters of job %s cannot be read: %s" % (
                claimed.id,
                error,
            )
        return claimed

    def release_job(self, job_id: str, attempt: int) -> None:
        self._give_back([(job_id, attempt)], started=True)

    def release_jobs(self, jobs: list[tuple[str, int]]) -> None:
        self._give_back(jobs, started=False)

    def _give_back(self, jobs, started: bool) -> None:
        """Make running jobs ready again (cancelled, if their run was); a job
        that never started does not count the attempt."""
        if not jobs:
            return
        now = time.time()
        rows = [
            (now, int(not started), int_id(job_id, "job"), attempt)
            for job_id, attempt in jobs
        ]
        with self._write() as connection:
            connection.executemany(_GIVE_BACK, rows)

    def current_claims(self, jobs: list[tuple[str, int]]) -> set[str]:
        if not jobs:
            return set()
        ids, attempts, values = _fenced(
            [(int_id(job_id, "job"), attempt) for job_id, attempt in jobs], 1
        )
        rows = self._read(_CURRENT % (ids, attempts), numbered(values))
        return {str(row[0]) for row in rows}


def _fenced(jobs, first: int) -> tuple[str, str, list]:
    """SQL for (job id, attempt) pairs, in numbered parameters from ``first``
    on: the list of ids, the CASE giving each id its attempt, the values."""
    ids, cases, values = [], [], []
    for number, (identifier, attempt) in enumerate(jobs):
        mark = first + 2 * number
        ids.append("?%d" % mark)
        cases.append("WHEN ?%d THEN ?%d" % (mark, mark + 1))
        values += (identifier, attempt)
    return ",".join(ids), " ".join(cases), values


def _choose(connection, elf_uids, limit: int, now: float) -> list[int]:
    """Ids of the jobs to claim: the claimable jobs of each uid in turn, in
    program order, stopping before a job attempted before unless it is the
    first."""
    chosen: list[int] = []
    for uid in elf_uids:
        rows = connection.execute(_CLAIMABLE, (uid, now, limit - len(chosen)))
        for identifier, fresh in rows.fetchall():
            if chosen and not fresh:
                return chosen
            chosen.append(identifier)
        if len(chosen) >= limit:
            break
    return chosen


def _parsed_site(text: str) -> dict:
    """A call site, parsed once: the jobs of a loop share theirs (read only,
    like every claimed job's site)."""
    site = _SITES.get(text)
    if site is None:
        if len(_SITES) >= _SITES_KEPT:
            _SITES.clear()
        site = _SITES[text] = loads(text)
    return site


def parameter_documents(inline: str | None, rows) -> list[ParameterDocument]:
    """Parameters as stored (see ``sqlite_rows.stored_parameters``): the
    JSON text of the job row's [values by name, names holding references],
    else the rows of the parameters table (name, JSON text, has_refs). A text
    without "{" holds no tagged dict, and says so (``plain``). ValueError
    when a text is not what was written."""
    try:
        if inline is None:
            return [
                ParameterDocument(name, loads(value), bool(has_refs), "{" not in value)
                for name, value, has_refs in rows
            ]
        document = loads(inline)
    except ValueError as error:
        raise ValueError("not valid JSON (%s)" % error) from None
    if (
        type(document) is not list
        or len(document) != 2
        or type(document[0]) is not dict
        or type(document[1]) is not list
    ):
        raise ValueError("not [values by name, names holding references]")
    values, references = document
    # the text of the values' object is all "{" ... "}" holds: plain if
    # nothing else in it opens an object
    plain = inline.count("{") == 1
    return [
        ParameterDocument(name, value, name in references, plain)
        for name, value in values.items()
    ]
