"""The ``blumycelium`` command (also ``python -m blumycelium``).

    blumycelium worker module:attribute [--processes N] [--once]
                                        [--lease S] [--grace S]
    blumycelium runs [--limit N]
    blumycelium show RUN [--format text|dot|mermaid|json|svg]
    blumycelium jobs [--run R] [--elf E] [--status S]
    blumycelium job JOB
    blumycelium failures [--run R]
    blumycelium elves
    blumycelium workers
    blumycelium watch RUN
    blumycelium retry RUN [--job JOB]   |   blumycelium retry --job JOB
    blumycelium cancel RUN
    blumycelium purge --before DATE

Every command takes ``--url`` (default: ``BLUMYCELIUM_URL``, else
``./mycelium.db``, as ``Mycelium()``), and every listing ``--json`` for
scripts. Errors (no such run, store unreachable, bad URL) are one line on
stderr and exit status 2. This is the only place blumycelium configures
logging.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime

from . import views
from .console import Console
from .errors import BlumyceliumError
from .progress import ProgressBar
from .store.base import JOB_STATUSES
from .urls import resolve_url, sqlite_path
from .worker_command import CommandError, run_worker


def main(argv=None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    options.url = getattr(options, "url", None) or options.global_url
    if not getattr(options, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=getattr(logging, options.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # the HTTP library's retry warnings would precede our one-line error
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        return options.handler(options)
    except (CommandError, BlumyceliumError) as error:
        print("blumycelium: error: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `blumycelium jobs | head`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blumycelium", description="Run and inspect blumycelium elves and runs."
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG, INFO, WARNING (default) or ERROR",
    )
    parser.add_argument(
        "--url", dest="global_url", help="the mycelium URL, for any command"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", help="the mycelium URL (default: BLUMYCELIUM_URL or ./mycelium.db)"
    )
    listing = argparse.ArgumentParser(add_help=False, parents=[common])
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    _add_worker(commands, common)
    _add_views(commands, listing)
    _add_actions(commands, common)
    return parser


def _add_worker(commands, common) -> None:
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="serve one elf's jobs until SIGINT/SIGTERM",
        description="Serve the jobs of one elf until SIGINT or SIGTERM.",
    )
    worker.add_argument(
        "target",
        metavar="module:attribute",
        help="an elf instance, or a factory returning one",
    )
    worker.add_argument(
        "--once", action="store_true", help="run the ready jobs once, then exit"
    )
    worker.add_argument(
        "--processes",
        type=_count,
        default=None,
        help="supervise this many worker processes, restarted when they die"
        " (default: serve in this process)",
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
        help="seconds to finish the job in hand after SIGTERM"
        " before giving it back (default 30)",
    )
    worker.set_defaults(handler=run_worker)


def _add_views(commands, listing) -> None:
    runs = _command(commands, "runs", listing, _runs, "recent runs")
    runs.add_argument("--limit", type=_count, default=50)
    show = _command(commands, "show", listing, _show, "one run's graph of jobs")
    show.add_argument("run")
    show.add_argument(
        "--format", default="text", choices=["text", "dot", "mermaid", "json", "svg"]
    )
    jobs = _command(commands, "jobs", listing, _jobs, "jobs, filtered")
    jobs.add_argument("--run")
    jobs.add_argument("--elf")
    jobs.add_argument("--status", choices=JOB_STATUSES)
    job = _command(
        commands,
        "job",
        listing,
        _job,
        "one job: parameters, result, attempts, failures",
    )
    job.add_argument("job")
    failures = _command(
        commands, "failures", listing, _failures, "failures grouped by traceback"
    )
    failures.add_argument("--run")
    _command(commands, "elves", listing, _elves, "registered elves")
    _command(commands, "workers", listing, _workers, "workers, live and lost")


def _add_actions(commands, common) -> None:
    watch = _command(commands, "watch", common, _watch, "follow a run until it ends")
    watch.add_argument("run")
    cancel = _command(
        commands, "cancel", common, _cancel, "cancel every job of a run not yet started"
    )
    cancel.add_argument("run")
    retry = _command(
        commands,
        "retry",
        common,
        _retry,
        "run the failed part of a run (or one failed job) again",
    )
    retry.add_argument("run", nargs="?")
    retry.add_argument("--job", help="retry only this failed job")
    purge = _command(
        commands,
        "purge",
        common,
        _purge,
        "delete finished runs and all that hangs on them",
    )
    purge.add_argument(
        "--before",
        required=True,
        type=_date,
        help="a date or time, e.g. 2026-12-01 or 2026-12-01T12:00",
    )


def _command(commands, name, parent, handler, summary):
    command = commands.add_parser(
        name,
        parents=[parent],
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
    )
    command.set_defaults(handler=handler)
    return command


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _date(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            "%r is not a date; write 2026-12-01 or 2026-12-01T12:00" % text
        ) from None


def _store(options):
    """The store the command looks at; an SQLite file must exist already
    (only ``worker`` and flows create one)."""
    from .mycelium import Mycelium

    _check_exists(options.url)
    return Mycelium(options.url).store


def _check_exists(url) -> None:
    path = sqlite_path(resolve_url(url))
    if path is not None and not os.path.exists(path):
        raise CommandError(
            "no mycelium at %s (the file does not exist); pass --url or set"
            " BLUMYCELIUM_URL" % path
        )


def _output(options, data, show) -> int:
    console = Console()
    if getattr(options, "json", False):
        console.json(data)
    else:
        show(console, data)
    return 0


def _runs(options) -> int:
    return _output(
        options, views.runs_data(_store(options), options.limit), views.show_runs
    )


def _show(options) -> int:
    graph = views.graph_data(_store(options), options.run)
    if options.json or options.format == "json":
        Console().json(graph)
    elif options.format == "text":
        views.show_graph(Console(), graph)
    else:
        sys.stdout.write(views.render_graph(graph, options.format))
    return 0


def _jobs(options) -> int:
    store = _store_with_run(options)
    data = views.jobs_data(store, options.run, options.elf, options.status)
    return _output(options, data, views.show_jobs)


def _store_with_run(options):
    """The store, after checking that ``--run`` (when given) names a run."""
    store = _store(options)
    if options.run is not None:
        store.get_run(options.run)  # NotFoundError: one line, exit 2
    return store


def _job(options) -> int:
    return _output(
        options, views.job_detail_data(_store(options), options.job), views.show_job
    )


def _failures(options) -> int:
    data = views.failures_data(_store_with_run(options), options.run)
    return _output(options, data, views.show_failures)


def _elves(options) -> int:
    return _output(options, views.elves_data(_store(options)), views.show_elves)


def _workers(options) -> int:
    return _output(options, views.workers_data(_store(options)), views.show_workers)


def _watch(options) -> int:
    store = _store(options)
    run = store.get_run(options.run)
    bar = ProgressBar(run.id, sys.stdout) if ProgressBar.wanted(sys.stdout) else None
    last = None
    while True:
        run = store.get_run(options.run)
        counts = store.count_jobs(run.id)
        if bar is not None:
            bar.update(counts, run.jobs_total, run.is_finished)
        elif counts != last or run.is_finished:
            print(
                "%s run %s: %s, %s"
                % (
                    time.strftime("%H:%M:%S"),
                    run.id,
                    run.status,
                    views.counts_text(counts) or "no jobs",
                ),
                flush=True,
            )
        last = counts
        if run.is_finished:
            return 0 if run.status == "done" else 1
        time.sleep(0.5)


def _cancel(options) -> int:
    run = _open_run(options, options.run)
    record = run.record()  # NotFoundError for an unknown run
    if record.is_finished:
        print(
            "run %s has already finished (%s); nothing to cancel"
            % (record.id, record.status)
        )
        return 0
    cancelled = run.cancel()
    print("run %s cancelled: %d jobs will not run" % (options.run, cancelled))
    return 0


def _retry(options) -> int:
    run_id = options.run
    if options.job is not None and run_id is None:
        run_id = _store(options).get_job(options.job).run_id
    if run_id is None:
        raise CommandError("name a run, or a job with --job")
    count = _open_run(options, run_id).retry(options.job)
    print("run %s: %d jobs will run again" % (run_id, count))
    return 0


def _purge(options) -> int:
    purged = _store(options).purge_runs(options.before)
    print("purged %d finished runs" % purged)
    return 0


def _open_run(options, run_id):
    from .mycelium import Mycelium

    _check_exists(options.url)
    return Mycelium(options.url).run(run_id)
