"""Machine elves: the workers of a mycelium, and their tasks.

An elf is an instance of a :class:`MachineElf` subclass, named by a ``uid``
unique in its mycelium. Its tasks are the methods named ``task_*``; each must
declare what it returns (see ``tasks.py``), which is checked when the class is
defined, so a malformed task fails at import with a message naming the class,
the task and the fix.

Called directly, a task is a plain method call: that is how elves are tested
without a store. Written inside a flow, a task call becomes a job for the elf
with that uid; any process that builds an elf with the same uid and class can
run it (``start_jobs`` once, or ``serve`` until stopped).

Settings an elf needs in every process (a file name, a connection string) go
through ``initialize``: ``MachineElf(uid, mycelium, *args, **kwargs)`` calls
``self.initialize(*args, **kwargs)``, so the orchestration and the worker
build the elf the same way::

    class Storage(MachineElf):
        def initialize(self, json_filename):
            self.json_filename = json_filename

    store = Storage("animals data store", myc, "animals.json")
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging

from .compiler.deferred import FlowError, current_builder, span_from_stack
from .compiler.diagnostics import Diagnostic
from .eager import EAGER, eager_call
from .errors import ElfDefinitionError, StoreError
from .tasks import find_task_specs

logger = logging.getLogger(__name__)


class MachineElf:
    """Base class of elves: subclass it and write ``task_*`` methods."""

    __blumycelium_tasks__: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if (
                name.startswith("task_")
                and inspect.isfunction(member)
                and not hasattr(member, "__blumycelium_task__")
            ):
                setattr(cls, name, _guard_task(member))
        cls.__blumycelium_tasks__ = find_task_specs(cls)

    def __init__(self, uid: str, mycelium=None, *args, **kwargs):
        if not isinstance(uid, str) or not uid.strip() or not _encodable(uid):
            raise ElfDefinitionError(
                "%s(uid, mycelium): uid must be a non-empty string (of text that"
                " UTF-8 can hold) naming the"
                " elf, found %r" % (type(self).__name__, uid)
            )
        self.uid = uid
        self.mycelium = mycelium
        self.current_job = None  # a JobContext while a worker runs a task
        self._worker = None
        initialize = getattr(self, "initialize", None)
        if initialize is None:
            if args or kwargs:
                raise ElfDefinitionError(
                    "%s(%r, mycelium, ...) got extra arguments but the class"
                    " defines no initialize(...) to receive them"
                    % (type(self).__name__, uid)
                )
            return
        # like __init__: called on every construction, its defaults applying
        signature = inspect.signature(initialize)
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise ElfDefinitionError(
                "%s(%r, mycelium, ...): the arguments after the mycelium go to"
                " initialize%s, which cannot take them: %s"
                % (type(self).__name__, uid, signature, error)
            ) from None
        initialize(*args, **kwargs)

    def __repr__(self) -> str:
        return "<%s %r>" % (type(self).__name__, self.uid)

    # -- what the elf is ------------------------------------------------------

    @classmethod
    def tasks(cls) -> dict:
        """The elf class's tasks by name (TaskSpec objects)."""
        return dict(cls.__blumycelium_tasks__)

    @classmethod
    def class_source(cls) -> str | None:
        try:
            return inspect.getsource(cls)
        except (OSError, TypeError):
            return None

    @classmethod
    def revision(cls) -> str:
        """A hash of the class source (of its tasks' revisions without one)."""
        return _class_revision(cls)

    @property
    def documentation(self) -> str | None:
        return inspect.getdoc(type(self))

    # -- the mycelium's side --------------------------------------------------

    def _require_mycelium(self, action: str):
        if self.mycelium is None:
            raise StoreError(
                "elf %r has no mycelium, so it cannot %s; build it as %s(%r,"
                " mycelium)" % (self.uid, action, type(self).__name__, self.uid)
            )
        return self.mycelium

    def register(self, store_source: bool = True) -> None:
        """Record the elf, its revision and its tasks in the mycelium."""
        self._require_mycelium("register").register_elf(self, store_source)

    def get_jobs(self, all_jobs: bool = False, status_restriction=("pending",)):
        """This elf's jobs (see Mycelium.get_jobs)."""
        return self._require_mycelium("list its jobs").get_jobs(
            self.uid, all_jobs=all_jobs, status_restriction=status_restriction
        )

    def start_jobs(
        self, store_failures: bool = True, raise_exceptions: bool = True
    ) -> int:
        """Run this elf's ready jobs until none is left; return how many ran.

        A failing task is recorded (with its traceback unless
        ``store_failures`` is False) and, when ``raise_exceptions`` is True,
        its exception is raised again after that.
        """
        return self.worker().run_ready_jobs(store_failures, raise_exceptions)

    def serve(self, lease: float | None = None, **options) -> int:
        """Run this elf's jobs as they become ready, until SIGINT or SIGTERM.

        Finishes the job in hand before returning (giving it back after the
        ``grace`` period); returns how many ran. ``lease`` is how long a job
        stays this worker's without a heartbeat. See
        ``blumycelium.worker.ElfWorker.serve`` for the other options.
        """
        return self.worker(lease).serve(**options)

    def worker(self, lease: float | None = None):
        """The worker that runs this elf's jobs in this process."""
        from .worker import DEFAULT_LEASE, ElfWorker

        if self._worker is None or (lease is not None and self._worker.lease != lease):
            mycelium = self._require_mycelium("run jobs")
            self._worker = ElfWorker(self, mycelium, lease or DEFAULT_LEASE)
        return self._worker


def _guard_task(function):
    """Wrap a task so that calling it from ordinary code while a flow builds is
    reported instead of running the task at submit time."""

    @functools.wraps(function)
    def task(self, *args, **kwargs):
        if not isinstance(self, MachineElf):
            raise _class_call_error(function)
        if current_builder() is not None:
            raise _direct_call_error(self, function)
        if EAGER.get():
            return eager_call(function, self, args, kwargs)
        return function(self, *args, **kwargs)

    task.__blumycelium_task__ = True
    task.__blumycelium_function__ = function
    return task


def _class_call_error(function) -> Exception:
    owner, name = function.__qualname__.split(".")[-2:]  # the class, not where
    elf = owner.lower()
    message = (
        "%s is called on the class %s, not on an elf of it: make one"
        " (e.g. %s = %s(%r, mycelium)) and call %s.%s(...)"
        % (function.__qualname__, owner, elf, owner, elf, elf, name)
    )
    if current_builder() is None:
        return TypeError(message)
    return FlowError([Diagnostic(span_from_stack(), message)])


def _direct_call_error(elf, function) -> FlowError:
    name = "%s.%s" % (type(elf).__name__, function.__name__)
    return FlowError(
        [
            Diagnostic(
                span_from_stack(),
                "%s was called from ordinary code (a function the flow calls) while the"
                " flow was building its graph; only task calls written in the flow"
                " itself become jobs" % name,
                "call the task in the flow, or define the helper inside the flow so"
                " that it is compiled with it",
            )
        ]
    )


def _class_revision(cls) -> str:
    source = cls.class_source()
    if source is None:
        source = "\n".join(spec.revision for spec in cls.tasks().values())
    digest = hashlib.sha256(("%s\n" % cls.__qualname__).encode())
    digest.update(source.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def _encodable(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
