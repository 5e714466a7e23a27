"""The ``blumycelium`` command (also ``python -m blumycelium``).

    blumycelium worker module:attribute [--url URL] [--once] [--lease S]
                                        [--grace S]
    blumycelium cancel RUN [--url URL]
    blumycelium retry RUN [--job JOB] [--url URL]

``module`` is a dotted module importable from the current directory, or a
path to a ``.py`` file; ``attribute`` names an elf instance in it, or a
factory (a class or function called without arguments) returning one. The
worker serves that elf until SIGINT or SIGTERM, finishes the job in hand and
exits 0. ``--url`` sets ``BLUMYCELIUM_URL`` before the module is imported, so
a module that builds ``Mycelium()`` uses that store.

Errors (bad target, store unreachable) are one line on stderr and exit 2.
This is the only place blumycelium configures logging.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import sys

from .errors import BlumyceliumError
from .loading import LoadError, import_module
from .urls import URL_VARIABLE


class CommandError(Exception):
    """A user error the command reports in one line."""


def main(argv=None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if not getattr(options, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, options.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return options.handler(options)
    except (CommandError, BlumyceliumError) as error:
        print("blumycelium: error: %s" % error, file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blumycelium", description="Run and inspect blumycelium elves and runs."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG, INFO (default), WARNING or ERROR",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    worker = commands.add_parser(
        "worker",
        help="serve one elf's jobs until SIGINT/SIGTERM",
        description="Serve the jobs of one elf until SIGINT or SIGTERM.",
    )
    worker.add_argument(
        "target",
        metavar="module:attribute",
        help="an elf instance, or a factory returning one",
    )
    worker.add_argument(
        "--url", help="the mycelium URL (default: BLUMYCELIUM_URL or ./mycelium.db)"
    )
    worker.add_argument(
        "--once", action="store_true", help="run the ready jobs once, then exit"
    )
    worker.add_argument(
        "--lease",
        type=_positive,
        default=None,
        help="seconds a job stays this worker's without a heartbeat (default 30)",
    )
    worker.add_argument(
        "--grace",
        type=_positive,
        default=30.0,
        help="seconds to finish the job in hand after SIGTERM before giving it"
        " back (default 30)",
    )
    worker.set_defaults(handler=_run_worker)
    _add_run_command(
        commands, "cancel", _cancel_run, "cancel every job of a run not yet started"
    )
    retry = _add_run_command(
        commands, "retry", _retry_run, "run the failed part of a run again"
    )
    retry.add_argument("--job", help="retry only this failed job of the run")
    return parser


def _add_run_command(commands, name: str, handler, summary: str):
    command = commands.add_parser(name, help=summary, description=summary + ".")
    command.add_argument("run", help="the run id")
    command.add_argument(
        "--url", help="the mycelium URL (default: BLUMYCELIUM_URL or ./mycelium.db)"
    )
    command.set_defaults(handler=handler)
    return command


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _open_run(options):
    from .mycelium import Mycelium

    return Mycelium(options.url).run(options.run)


def _cancel_run(options) -> int:
    cancelled = _open_run(options).cancel()
    print("run %s cancelled: %d jobs will not run" % (options.run, cancelled))
    return 0


def _retry_run(options) -> int:
    count = _open_run(options).retry(options.job)
    print("run %s: %d jobs will run again" % (options.run, count))
    return 0


def _run_worker(options) -> int:
    # Until serve() takes over the signals, a stop request means there is no
    # job in hand: leave at once, cleanly.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _exit_cleanly)
    if options.url:
        os.environ[URL_VARIABLE] = options.url
    elf = load_elf(options.target)
    if options.once:
        elf.worker(options.lease).run_ready_jobs(raise_exceptions=False)
    else:
        elf.serve(lease=options.lease, grace=options.grace)
    return 0


def _exit_cleanly(number, frame):
    raise SystemExit(0)


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
