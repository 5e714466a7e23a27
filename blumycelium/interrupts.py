"""Keeping a task's lease alive, and stopping a task from outside.

:class:`Heartbeat` is one thread per worker. Every third of the lease it
renews the lease of the job in hand (so a long task keeps its job) or, when
the worker holds no job, records that the worker is alive. If a renewal is
refused, the job was handed to another worker (this one was too slow to renew
its lease, e.g. its machine was suspended): the task goes on, but its outcome
is refused when stored, since every write is fenced by the attempt number.

:class:`Deadlines` enforces a task's timeout and the grace period after
SIGTERM with ``SIGALRM`` in the worker's main thread: when a deadline
passes, the signal handler raises an exception inside the running task
(:class:`~blumycelium.errors.TaskTimeoutError`, or :class:`StopNow` for the grace
period). This interrupts Python code and the blocking calls that signals
interrupt (sleep, socket and file reads); code that never returns to the
interpreter (a C extension busy in a loop) is stopped only when it returns.
Outside the main thread (``start_jobs`` from a thread) timeouts cannot be
enforced, and the worker logs so once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

from .errors import TaskTimeoutError

logger = logging.getLogger(__name__)


class StopNow(BaseException):  # noqa: N818 - an order, not an error
    """The grace period after SIGTERM or SIGINT is over: give the job back."""


class Heartbeat(threading.Thread):
    """Renews the lease of the job in hand, or says the worker is alive."""

    def __init__(self, store, worker_id: str, lease: float, registered: bool):
        super().__init__(name="blumycelium-heartbeat", daemon=True)
        self.store = store
        self.worker_id = worker_id
        self.lease = lease
        self.registered = registered
        self.job: tuple[str, int] | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.lease / 3):
            try:
                self.beat()
            except Exception:
                logger.exception("worker %s: heartbeat failed", self.worker_id)

    def beat(self) -> None:
        job = self.job
        if job is not None:
            if not self.store.renew_lease(job[0], job[1], self.worker_id, self.lease):
                logger.warning(
                    "job %s attempt %d: the lease was lost; its outcome"
                    " will not be stored",
                    job[0],
                    job[1],
                )
        elif self.registered:
            self.store.worker_heartbeat(self.worker_id, None)

    def stop(self) -> None:
        self._stopped.set()


class Deadlines:
    """The timeout of the task in hand and the end of the grace period."""

    def __init__(self):
        self.timeout_at: float | None = None
        self.grace_at: float | None = None
        self.description = ""
        self.armed = False
        self._warned = False

    @staticmethod
    def available() -> bool:
        return (
            hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )

    @contextlib.contextmanager
    def running(self, timeout: float | None, description: str):
        """Arm the deadlines around one task call."""
        if not self.available():
            if timeout is not None and not self._warned:
                logger.warning("timeouts are not enforced outside the main thread")
                self._warned = True
            yield
            return
        self.timeout_at = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.description = description
        previous = signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        try:
            self._arm()
            yield
        finally:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            self.timeout_at = None

    def request_stop(self, grace: float | None) -> None:
        """Stop the task in hand ``grace`` seconds from now (None: never)."""
        if grace is None:
            return
        self.grace_at = time.monotonic() + grace
        if self.armed:
            self._arm()

    def _arm(self) -> None:
        due = [t for t in (self.timeout_at, self.grace_at) if t is not None]
        if due:
            delay = max(0.001, min(due) - time.monotonic())
            signal.setitimer(signal.ITIMER_REAL, delay)

    def _fire(self, number, frame) -> None:
        now = time.monotonic()
        if self.grace_at is not None and now >= self.grace_at:
            raise StopNow()
        if self.timeout_at is not None and now >= self.timeout_at:
            self.timeout_at = None
            raise TaskTimeoutError(
                "%s ran longer than its timeout of %gs and was"
                " stopped" % (self.description, self.timeout)
            )
        self._arm()


class InstalledDeadlines(Deadlines):
    """Deadlines whose SIGALRM handler stays installed while the worker runs
    its jobs (``install``), instead of being installed and removed around
    every task; the timer is only set for a task that has a deadline."""

    _replaced = None  # the handler it replaced, while installed

    def install(self) -> None:
        if self.available() and self._replaced is None:
            previous = signal.signal(signal.SIGALRM, self._fire)
            self._replaced = previous or signal.SIG_DFL

    def uninstall(self) -> None:
        if self._replaced is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._replaced)
            self._replaced = None

    def running(self, timeout: float | None, description: str):
        if self._replaced is None or not self.available():
            return super().running(timeout, description)
        return self._armed(timeout, description)

    @contextlib.contextmanager
    def _armed(self, timeout: float | None, description: str):
        if timeout is not None:
            self.timeout_at = time.monotonic() + timeout
        self.timeout, self.description, self.armed = timeout, description, True
        timed = self.timeout_at is not None or self.grace_at is not None
        if timed:
            self._arm()
        try:
            yield
        finally:
            self.armed = False
            if timed or self.grace_at is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
            self.timeout_at = None

    def _fire(self, number, frame) -> None:
        if self.armed:  # a late signal after the task is ignored
            super()._fire(number, frame)
