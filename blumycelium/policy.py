"""Retry and timeout policies of tasks.

    from blumycelium import MachineElf, retry, timeout

    class Fetcher(MachineElf):
        retry_policy = retry(max_attempts=3)        # every task of the class
        task_timeout = 60                           # seconds, every task

        @retry(max_attempts=5, backoff=2.0, on=(ConnectionError,))
        @timeout(10)
        def task_fetch(self, url: str) -> ("body",):
            ...

A failed attempt whose exception is one of ``on`` is retried until
``max_attempts`` attempts have run; attempt *n* waits
``backoff * factor ** (n - 1)`` seconds (at most ``max_backoff``) before it
may be claimed again, without a worker sleeping on it. A timeout counts as a
failure of type ``TaskTimeoutError`` and is retried under the same policy
when ``TaskTimeoutError`` is among ``on`` (it is, by default: ``on`` is
``(Exception,)``). A worker lost in the middle of a task (its lease expired)
counts as a failed attempt too.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ElfDefinitionError


@dataclass(frozen=True)
class RetryPolicy:
    """How often, after how long, and on which exceptions a task is retried."""

    max_attempts: int = 1
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0
    on: tuple = (Exception,)

    def __post_init__(self):
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ElfDefinitionError(
                "retry(max_attempts=%r): max_attempts must be an integer of at"
                " least 1" % (self.max_attempts,)
            )
        if self.backoff < 0 or self.factor < 1 or self.max_backoff < 0:
            raise ElfDefinitionError(
                "retry(backoff=%r, factor=%r, max_backoff=%r): delays must not be"
                " negative and factor must be at least 1"
                % (self.backoff, self.factor, self.max_backoff)
            )
        for kind in self.on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ElfDefinitionError(
                    "retry(on=...) takes exception classes, found %r" % (kind,)
                )

    def __call__(self, function):
        """Used as a decorator: attach this policy to one task."""
        function.__blumycelium_retry__ = self
        return function

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        return min(self.max_backoff, self.backoff * self.factor ** (attempt - 1))

    def retries(self, error: BaseException, attempt: int) -> bool:
        """True when the failed ``attempt`` should be followed by another."""
        return attempt < self.max_attempts and isinstance(error, self.on)


NO_RETRY = RetryPolicy()


def retry(
    max_attempts: int = 3,
    backoff: float = 1.0,
    factor: float = 2.0,
    max_backoff: float = 300.0,
    on=(Exception,),
) -> RetryPolicy:
    """A retry policy: a decorator for one task, or an elf class attribute
    ``retry_policy`` for all of its tasks."""
    on = tuple(on) if isinstance(on, (tuple, list)) else (on,)
    return RetryPolicy(
        max_attempts, float(backoff), float(factor), float(max_backoff), on
    )


def timeout(seconds: float):
    """Decorator: stop the task after ``seconds`` and record a TaskTimeoutError."""
    seconds = _check_timeout(seconds, "timeout(%r)" % (seconds,))

    def decorate(function):
        function.__blumycelium_timeout__ = seconds
        return function

    return decorate


def _check_timeout(seconds, where: str) -> float | None:
    if seconds is None:
        return None
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ElfDefinitionError(
            "%s: a timeout is a positive number of seconds" % where
        )
    return float(seconds)


def task_policies(owner: type, function) -> tuple[RetryPolicy, float | None]:
    """The retry policy and timeout of a task: its own, else its class's."""
    policy = (
        getattr(function, "__blumycelium_retry__", None)
        or getattr(owner, "retry_policy", None)
        or NO_RETRY
    )
    if not isinstance(policy, RetryPolicy):
        raise ElfDefinitionError(
            "%s.retry_policy must be made with blumycelium.retry(...), found %r"
            % (owner.__name__, policy)
        )
    seconds = getattr(function, "__blumycelium_timeout__", None)
    if seconds is None:
        seconds = _check_timeout(
            getattr(owner, "task_timeout", None), "%s.task_timeout" % owner.__name__
        )
    return policy, seconds
