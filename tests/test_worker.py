"""Running jobs in-process with start_jobs: results, failures, contracts."""

import json
import sqlite3

import pytest

from blumycelium import NotFoundError, RunFailedError


def test_a_chain_of_one_elf_runs_in_one_start_jobs_call(workshop):
    run = workshop.chain(5, 4)
    assert run.status == "running"
    assert workshop.adder.start_jobs() == 4
    assert run.wait(timeout=5) == "done"
    assert run.result() == 9


def test_results_flow_through_expressions_and_containers(workshop):
    run = workshop.sentence_report("hello brave new world")
    workshop.texts.start_jobs()
    assert run.result(timeout=5) == {
        "shout": "HELLO 4!",
        "echo": {"first": "hello", "all": ["hello", "brave", "new", "world"]},
        "n": 40,
    }


def test_a_failing_task_stores_its_traceback_and_fails_downstream(workshop):
    run = workshop.failing("bad input 42")
    with pytest.raises(ValueError, match="bad input 42"):
        workshop.adder.start_jobs()
    workshop.adder.start_jobs(raise_exceptions=False)
    workshop.texts.start_jobs()
    assert run.wait(timeout=5) == "failed"
    assert [job.status for job in run.jobs()] == [
        "done",
        "failed",
        "upstream_failed",
        "upstream_failed",
    ]
    [failure] = run.failures()
    assert failure.exception_type == "ValueError"
    assert failure.message == "bad input 42"
    assert "raise ValueError(message)" in failure.traceback
    assert failure.task_revision == workshop.Adder.tasks()["task_fail"].revision


def test_result_of_a_failed_run_names_job_task_call_site_and_exception(workshop):
    run = workshop.failing("no way")
    workshop.adder.start_jobs(raise_exceptions=False)
    with pytest.raises(RunFailedError) as caught:
        run.result(timeout=5)
    message = str(caught.value)
    failed_job = run.jobs()[1]
    assert (
        "run %s of flow failing failed: job %s (Adder.task_fail, elf 'adder')"
        % (run.id, failed_job.id)
        in message
    )
    assert "workshop.py:%d in flow failing" % failed_job.site["line"] in message
    assert "raised ValueError: no way" in message
    assert "Traceback" in message


def test_store_failures_false_keeps_the_failure_but_not_the_traceback(workshop):
    run = workshop.failing("quiet")
    workshop.adder.start_jobs(store_failures=False, raise_exceptions=False)
    [failure] = run.failures()
    assert failure.message == "quiet"
    assert "not stored" in failure.traceback


@pytest.mark.parametrize(
    ("task", "error", "fragment"),
    [
        (
            "task_not_a_dict",
            "TaskContractError",
            "returned str 'oops'; it must return a dict with the keys 'value'",
        ),
        ("task_missing_key", "TaskContractError", "without the declared key 'other'"),
        (
            "task_unstorable",
            "NotStorableError",
            'Broken.task_unstorable() result["value"]: set is not storable',
        ),
    ],
)
def test_a_task_returning_the_wrong_shape_fails_with_the_reason(
    workshop, task, error, fragment
):
    @workshop.mycelium.flow
    def misbehave():
        return getattr(workshop.broken, task)()

    run = misbehave()
    workshop.broken.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=5) == "failed"
    [failure] = run.failures()
    assert failure.exception_type == "blumycelium.errors." + error
    assert fragment in failure.message


def test_received_values_are_checked_against_argument_annotations(workshop):
    @workshop.mycelium.flow
    def wrong_type():
        number = workshop.adder.task_add(1)["sum"]
        return workshop.texts.task_shout(number)["text"]

    run = wrong_type()
    workshop.adder.start_jobs()
    workshop.texts.start_jobs(raise_exceptions=False)
    [failure] = run.failures()
    assert failure.message == (
        "Texts.task_shout() parameter 'text' expects str, got int 2"
    )


def test_an_expression_error_names_the_expression_and_flow_line(workshop):
    @workshop.mycelium.flow
    def bad_index():
        parts = workshop.texts.task_words("one")
        return workshop.texts.task_echo(parts["words"][5])["value"]

    run = bad_index()
    workshop.texts.start_jobs(raise_exceptions=False)
    [failure] = run.failures()
    assert failure.exception_type.endswith("ExpressionError")
    assert "the expression '_0[5]' (flow line" in failure.message
    assert "flow bad_index at " in failure.message
    assert "IndexError: list index out of range" in failure.message


def test_a_hand_edited_expression_is_refused_and_fails_only_its_job(workshop, db_url):
    run = workshop.sentence_report("a b")
    connection = sqlite3.connect(db_url[len("sqlite:///") :])
    # the job's parameters are stored in its row, as [values, names with refs]
    job_id, text = connection.execute(
        "SELECT id, parameters FROM jobs WHERE parameters LIKE '%\"expr\"%'"
    ).fetchone()
    parameters = json.loads(text)
    values, references = parameters
    expression = values[references[0]]
    assert expression["__bm__"] == "expr"
    expression["code"] = "__import__('os').system('touch /tmp/pwned')"
    connection.execute(
        "UPDATE jobs SET parameters = ? WHERE id = ?",
        (json.dumps(parameters), job_id),
    )
    connection.commit()
    connection.close()
    workshop.texts.start_jobs(raise_exceptions=False)
    assert run.wait(timeout=5) == "failed"
    [failure] = run.failures()
    assert (
        "is refused: the name '__import__' starts with an underscore" in failure.message
    )
    assert sorted(j.status for j in run.jobs()) == ["done", "done", "failed"]


def test_an_interrupted_task_gives_its_job_back(workshop, monkeypatch):
    run = workshop.chain(1, 1)

    def interrupted(self, a, b=1):
        raise KeyboardInterrupt

    spec = workshop.Adder.tasks()["task_add"]
    monkeypatch.setattr(spec, "function", interrupted)
    with pytest.raises(KeyboardInterrupt):
        workshop.adder.start_jobs()
    [job] = run.jobs()
    assert (job.status, job.attempts) == ("ready", 1)


def test_runs_are_re_attached_by_id_and_unknown_ids_are_refused(workshop):
    run = workshop.chain(1, 2)
    again = workshop.mycelium.run(run.id)
    assert again.id == run.id and again.status == "running"
    with pytest.raises(NotFoundError, match="no run '9999'"):
        workshop.mycelium.run(9999)


def test_waiting_without_workers_times_out_with_a_clear_message(workshop):
    run = workshop.chain(1, 2)
    with pytest.raises(TimeoutError, match="2 of 2 jobs have not finished"):
        run.wait(timeout=0.2)


def test_seed_era_get_jobs_and_drop_jobs(workshop):
    workshop.chain(1, 3)
    jobs = workshop.mycelium.get_jobs("adder")
    assert [job["status"] for job in jobs] == ["ready", "pending", "pending"]
    waiting = workshop.mycelium.get_jobs("adder", status_restriction=["ready"])
    assert [job["status"] for job in waiting] == ["ready"]
    everything = workshop.mycelium.get_jobs("adder", all_jobs=True)
    assert [job["status"] for job in everything] == ["ready", "pending", "pending"]
    workshop.mycelium.drop_jobs()
    assert workshop.mycelium.get_jobs("adder", all_jobs=True) == []


def test_failures_that_resist_storing_are_stored_sanitized(workshop):
    run = workshop.awkward_failures()
    assert workshop.awkward.start_jobs(raise_exceptions=False) == 3
    assert run.wait(timeout=5) == "failed"
    messages = sorted(f.message for f in run.failures())
    assert messages[0] == "(cannot be shown: str() raised ValueError)"
    assert messages[1] == "no such file: caf\\udce9.txt"
    assert [j.status for j in run.jobs()] == ["failed", "failed", "done"]


@pytest.mark.parametrize(
    "stored, problem",
    [
        ('[{"n": {not json', "not valid JSON ("),
        ('{"n": 1}', "not [values by name, names holding references]"),
        ('[{"n": 1}, "n"]', "not [values by name, names holding references]"),
    ],
)
def test_a_corrupt_parameter_document_fails_only_its_job(
    workshop, db_url, stored, problem
):
    run = workshop.many_noops(3)
    connection = sqlite3.connect(db_url[len("sqlite:///") :])
    first = connection.execute("SELECT min(id) FROM jobs").fetchone()[0]
    connection.execute("UPDATE jobs SET parameters = ? WHERE id = ?", (stored, first))
    connection.commit()
    connection.close()
    assert workshop.adder.start_jobs(raise_exceptions=False) == 3
    assert [j.status for j in run.jobs()] == ["failed", "done", "done"]
    message = run.failures()[0].message
    assert "the stored parameters of job %d cannot be read: " % first in message
    assert problem in message
