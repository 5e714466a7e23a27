"""``blumycelium worker module:attribute``: serve an elf from the command line.

``module`` is a dotted module importable from the current directory, or a
path to a ``.py`` file; ``attribute`` names an elf instance in it, or a
factory (a class or function called without arguments) returning one. The
worker serves that elf until SIGINT or SIGTERM, finishes the job in hand (or
gives it back after the grace period) and exits 0.

With ``--processes N`` (1 included) the command supervises N worker
processes of the elf:
it forwards SIGINT and SIGTERM to them, starts a new one when one dies
unexpectedly (with a growing pause, so a crashing elf does not spin), and
exits 0 once all have stopped cleanly.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import subprocess
import sys
import time

from .loading import LoadError, import_module
from .urls import URL_VARIABLE

logger = logging.getLogger(__name__)


class CommandError(Exception):
    """A user error the command reports in one line."""


def run_worker(options) -> int:
    # Until serve() takes over the signals, a stop request means there is no
    # job in hand: leave at once, cleanly.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _exit_cleanly)
    if options.url:
        os.environ[URL_VARIABLE] = options.url
    if options.processes is not None and not options.once:
        return supervise(options)  # asked for N processes, 1 included
    elf = load_elf(options.target)
    if options.once:
        elf.worker(options.lease).run_ready_jobs(raise_exceptions=False)
    else:
        elf.serve(lease=options.lease, grace=options.grace)
    return 0


def _exit_cleanly(number, frame):
    raise SystemExit(0)


def supervise(options) -> int:
    """Run ``options.processes`` worker processes until told to stop."""
    load_elf(options.target)  # fail here, once, if the target is wrong
    command = [
        sys.executable,
        "-m",
        "blumycelium",
        "--log-level",
        options.log_level,
        "worker",
        options.target,
        "--grace",
        str(options.grace),
    ]
    if options.lease:
        command += ["--lease", str(options.lease)]
    stopping = []

    def stop(number, frame):
        stopping.append(number)
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    children = [subprocess.Popen(command) for _ in range(options.processes)]
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop)
    pauses = [0.5] * len(children)
    while not stopping:
        for position, child in enumerate(children):
            if child.poll() is not None and not stopping:
                logger.warning(
                    "worker process %d exited with %s; starting another in %.1fs",
                    child.pid,
                    child.returncode,
                    pauses[position],
                )
                time.sleep(pauses[position])
                pauses[position] = min(pauses[position] * 2, 30.0)
                children[position] = subprocess.Popen(command)
        time.sleep(0.2)
    codes = [child.wait() for child in children]
    return 0 if all(code == 0 for code in codes) else 1


def load_elf(target: str):
    """Import ``module:attribute`` and return the elf it names."""
    from .machine_elf import MachineElf

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            "%r is not module:attribute (for example demos.quickstart:printer)" % target
        )
    try:
        value = import_module(module_name)
    except LoadError as error:
        raise CommandError(str(error)) from error
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise CommandError("%s has no attribute %r" % (module_name, part))
        value = getattr(value, part)
    if getattr(value, "__blumycelium_flow__", False):
        raise CommandError(
            "%s is a flow, not an elf: a worker serves an elf's tasks; name the"
            " elf instance (module:elf_variable), and call the flow to submit"
            " runs" % target
        )
    if not isinstance(value, MachineElf) and callable(value):
        value = _call_factory(target, value)
    if not isinstance(value, MachineElf):
        raise CommandError(
            "%s is %s, not a MachineElf instance nor a factory"
            " returning one" % (target, type(value).__name__)
        )
    return value


def _call_factory(target: str, factory):
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise CommandError(
            "%s needs arguments; name an elf instance, or a factory"
            " called without arguments" % target
        ) from None
    except ValueError:
        pass
    try:
        return factory()
    except Exception as error:
        raise CommandError(
            "calling %s() failed: %s: %s" % (target, type(error).__name__, error)
        ) from error
