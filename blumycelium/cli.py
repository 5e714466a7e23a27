"""The ``blumycelium`` command (also ``python -m blumycelium``).

    blumycelium worker module:attribute [--url URL] [--once] [--log-level L]

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
import importlib
import importlib.util
import inspect
import logging
import os
import sys

from .errors import BlumyceliumError
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
        level=getattr(logging, options.log_level.upper(), logging.INFO),
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
        "--log-level", default="INFO", help="DEBUG, INFO (default), WARNING or ERROR"
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
    worker.set_defaults(handler=_run_worker)
    return parser


def _run_worker(options) -> int:
    if options.url:
        os.environ[URL_VARIABLE] = options.url
    elf = load_elf(options.target)
    if options.once:
        elf.start_jobs(store_failures=True, raise_exceptions=False)
    else:
        elf.serve()
    return 0


def load_elf(target: str):
    """Import ``module:attribute`` and return the elf it names."""
    from .machine_elf import MachineElf

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise CommandError(
            "%r is not module:attribute (for example demos.quickstart:printer)" % target
        )
    value = _import(module_name)
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


def _import(name: str):
    if name.endswith(".py") or os.sep in name:
        return _import_file(name)
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise CommandError(
                "cannot import %r from %s: %s" % (name, os.getcwd(), error)
            ) from error
        raise


def _import_file(path: str):
    if not os.path.isfile(path):
        raise CommandError("no such file: %s" % path)
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
