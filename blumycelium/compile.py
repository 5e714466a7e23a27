"""``python -m blumycelium.compile flow.py``: preview and check flows.

Imports the file in preview mode (no Mycelium opens its store, nothing is
written), finds every flow in it, and prints each flow's structure (task
calls, expression nodes, edges, loops and conditions, each with its source
line) in the chosen format. Problems are printed to stderr the way a compiler
prints them, and the exit status is 1 when any is an error:

    python -m blumycelium.compile flow.py [--flow NAME]
                                          [--format text|dot|mermaid|json]

The file is imported as a module named after it, with its directory first on
``sys.path``, so it can import its neighbours; code under
``if __name__ == "__main__":`` does not run.
"""

from __future__ import annotations

import argparse
import sys

from .compiler.analysis import analyse_flow
from .compiler.cstsource import parse_flow
from .compiler.render import FORMATS, render
from .compiler.source import read_flow_source
from .errors import BlumyceliumError, CompileError
from .flow import Flow
from .loading import LoadError, import_module
from .mycelium import preview_mode


def main(argv=None) -> int:
    options = _parser().parse_args(argv)
    try:
        flows = load_flows(options.file)
    except _LoadError as error:
        print("blumycelium.compile: %s" % error, file=sys.stderr)
        return 1
    if options.flow:
        flows = [flow for flow in flows if flow.name == options.flow]
        if not flows:
            print(
                "blumycelium.compile: no flow named %r in %s"
                % (options.flow, options.file),
                file=sys.stderr,
            )
            return 1
    structures, failed = [], False
    for flow in flows:
        structure, errors = preview_flow(flow)
        for message in errors:
            print(message, file=sys.stderr)
        failed = failed or bool(errors)
        if structure is not None:
            structures.append(structure)
    if structures:
        text = render(structures, options.format)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m blumycelium.compile",
        description="Preview and check the flows of a file without running them.",
    )
    parser.add_argument("file", help="a Python file defining flows")
    parser.add_argument("--flow", help="show only the flow with this name")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output format (default: text)",
    )
    return parser


class _LoadError(Exception):
    """The file cannot be previewed at all."""


def load_flows(path: str) -> list[Flow]:
    """Import ``path`` in preview mode; return its flows in source order."""
    with preview_mode():
        try:
            module = import_module(path)
        except LoadError as error:
            raise _LoadError(str(error)) from error
        except BlumyceliumError as error:
            raise _LoadError("cannot import %s:\n%s" % (path, error)) from error
    flows = list({id(f): f for f in _flows_in(vars(module), module.__name__)}.values())
    if not flows:
        raise _LoadError(
            "no flow in %s (flows are functions decorated with @mycelium.flow)" % path
        )
    return sorted(flows, key=_source_line)


def _flows_in(namespace: dict, module: str, depth: int = 0):
    """The flows of a namespace: its own, and those defined in the classes
    the module defines (methods decorated as flows), nested ones too."""
    for value in namespace.values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, Flow):
            yield value
        elif (
            isinstance(value, type)
            and value.__module__ == module
            and depth < _CLASS_DEPTH
        ):
            yield from _flows_in(vars(value), module, depth + 1)


_CLASS_DEPTH = 5  # classes in classes: as deep as anyone nests them


def _source_line(flow: Flow) -> int:
    code = getattr(flow.function, "__code__", None)
    return code.co_firstlineno if code else 0


def preview_flow(flow: Flow):
    """(structure or None, rendered errors) for one flow."""
    if flow.error is not None:
        return None, [str(flow.error)]
    try:
        parsed = parse_flow(read_flow_source(flow.function))
    except CompileError as error:
        return None, [str(error)]
    structure = analyse_flow(parsed, flow.function)
    errors = [d.render() for d in structure.diagnostics if d.severity == "error"]
    return structure, errors


if __name__ == "__main__":
    sys.exit(main())
