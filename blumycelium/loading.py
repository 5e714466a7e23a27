"""Importing the user's module named on a command line, with one-line errors.

Both ``blumycelium worker module:attribute`` and ``python -m
blumycelium.compile flow.py`` import user code. A module is a dotted name
importable from the current directory, or a path to a Python file (imported
under its file name, with its directory first on ``sys.path`` so that it can
import its neighbours, as when it is run as a script). Whatever goes wrong is
raised as :class:`LoadError` with one line that says what and where.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback

from .errors import BlumyceliumError


class LoadError(Exception):
    """The module cannot be imported; the message is one line."""


def import_module(name: str):
    """Import a dotted module name or a file path."""
    if name.endswith(".py") or os.sep in name or os.path.exists(name):
        return _import_file(name)
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise LoadError(
                "cannot import %r from %s: %s" % (name, os.getcwd(), error)
            ) from error
        raise LoadError(describe_import_error(name, error)) from error
    except BlumyceliumError:
        raise
    except Exception as error:
        raise LoadError(describe_import_error(name, error)) from error


def _import_file(path: str):
    if os.path.isdir(path):
        raise LoadError("%s is a directory; name a Python file" % path)
    if not os.path.isfile(path):
        raise LoadError("no such file: %s" % path)
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BlumyceliumError:
        raise
    except Exception as error:
        raise LoadError(describe_import_error(path, error)) from error
    return module


def describe_import_error(name: str, error: BaseException) -> str:
    """One line: what the import raised, and the file and line it came from."""
    if isinstance(error, SyntaxError):
        return "cannot import %s: SyntaxError: %s (%s, line %s)" % (
            name,
            error.msg,
            error.filename,
            error.lineno,
        )
    frames = traceback.extract_tb(error.__traceback__)
    user = [frame for frame in frames if "importlib" not in frame.filename]
    where = " (%s, line %d)" % (user[-1].filename, user[-1].lineno) if user else ""
    last = traceback.format_exception_only(error)[-1].strip()
    hint = ""
    if isinstance(error, ImportError) and "relative import" in str(error):
        hint = "; a module of a package is named by its dotted name (package.module)"
    return "cannot import %s: %s%s%s" % (name, last, where, hint)
