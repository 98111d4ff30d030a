"""What a job's settings do to its outcome, in the pure tracker: automatic retries (a
failed run is not the end), delete after run (a "not found" that is an answer), and the
looks near the end of a job whose result would be lost."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cdm_status import (
    DisposableType,
    JobDeletedError,
    JobDone,
    JobNotFoundError,
    JobSettings,
    JobStatus,
    OutcomeKind,
    PollPolicy,
    RetryExpected,
    RetryType,
    StatusChanged,
    Submission,
)
from cdm_status._endings import Learned, Step, after_deletion, after_failure, is_next_run
from cdm_status._events import Event
from cdm_status._models import JobSummary
from cdm_status._tracker import (
    Conditions,
    Decision,
    Demand,
    Interest,
    JobTrack,
    Rules,
    TrackPhase,
    answered,
    dispatched,
    failed,
    learned,
    listed,
)
from cdm_status._waiter import DEFAULT_FAILURE, DEFAULT_SUCCESS

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
RULES = Rules(success=DEFAULT_SUCCESS, failure=DEFAULT_FAILURE)  # the waiter's own
GRACE = 300.0
RETRYING = JobSettings(retry=RetryType.RETRY_TRIPLE, raw_retry="RETRY_TRIPLE")
KEEPING = JobSettings(disposable=DisposableType.NONE, retry=RetryType.NONE)


def moment(now: float) -> Conditions:
    policy = PollPolicy(jitter=0.0, retry_grace=GRACE)
    return Conditions(now=now, at=AT + timedelta(seconds=now), policy=policy, per_second=0.1)


def run(
    status: str,
    number: int = 1,
    *,
    ended: float = 0.0,
    summary: str | None = None,
    delete: bool | None = None,
    progress: float | None = None,
) -> Submission:
    """Submission ``number`` of job "j" (created ``number`` minutes after AT)."""
    return Submission(
        "j",
        JobStatus.parse(status),
        status,
        creation_date=AT + timedelta(minutes=number),
        last_update_date=AT + timedelta(seconds=ended) if ended else None,
        submission_id=number,
        error_summary=summary,
        is_delete_job=delete,
        progress=progress,
    )


class Job:
    """One job with one interest, fed answers at given times."""

    def __init__(self, settings: JobSettings | None = None) -> None:
        self.track = JobTrack("j")
        self.track.settings = settings
        if settings is not None:
            self.track.learned = Learned.KNOWN
        self.interest = Interest("j", RULES, key=1)
        self.demand = Demand()
        self.events: list[Event] = []

    def _take(self, decision: Decision) -> Decision:
        self.events.extend(event for _, event in decision.events)
        return decision

    def answer(self, submission: Submission, now: float) -> Decision:
        if self.track.phase is not TrackPhase.POLLING:
            if self.track.phase is TrackPhase.AWAITING_LIST:
                self.track.move(TrackPhase.QUEUED)
            dispatched(self.track)
        return self._take(
            answered(self.track, submission, [self.interest], moment(now), self.demand)
        )

    def gone(self, now: float) -> Decision:
        if self.track.phase is not TrackPhase.POLLING:
            dispatched(self.track)
        error = JobNotFoundError("Job[j] doesn't exist.", status_code=400, job_name="j")
        return self._take(failed(self.track, error, [self.interest], moment(now)))

    def learn(self, settings: JobSettings | None, now: float) -> Decision:
        return self._take(learned(self.track, settings, [self.interest], moment(now), self.demand))

    def done(self) -> list[JobDone]:
        return [event for event in self.events if isinstance(event, JobDone)]

    def retries(self) -> list[RetryExpected]:
        return [event for event in self.events if isinstance(event, RetryExpected)]


# ---------------------------------------------------------------------- retries


def test_a_failed_run_that_cdm_retries_is_not_the_end() -> None:
    job = Job(RETRYING)
    job.answer(run("RUNNING"), 10)
    decision = job.answer(run("FAILED", ended=60, summary="connection refused"), 70)
    assert job.done() == []
    [expected] = job.retries()
    assert (expected.attempt, expected.retries) == (1, 3)
    assert expected.submission.error_summary == "connection refused"
    assert decision.poll_at is not None
    assert decision.poll_at <= 70 + GRACE
    # The retry is a new submission: it boots, runs and succeeds.
    job.answer(run("BOOTING", 2), 100)
    job.answer(run("SUCCEEDED", 2, ended=200), 210)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.SUCCEEDED
    assert [a.error_summary for a in done.outcome.attempts] == ["connection refused"]
    assert done.outcome.submission is not None
    assert done.outcome.submission.submission_id == 2
    changes = [e.current for e in job.events if isinstance(e, StatusChanged)]
    assert changes == [JobStatus.RUNNING, JobStatus.FAILED, JobStatus.BOOTING, JobStatus.SUCCEEDED]


def test_the_same_submission_starting_again_is_the_next_attempt() -> None:
    job = Job(RETRYING)
    job.answer(run("FAILED", ended=60, summary="first"), 70)
    job.answer(run("RUNNING", ended=80), 90)  # same submission id and creation date
    # It failed again between two looks: a later last-update date tells the runs apart.
    job.answer(run("FAILED", ended=150, summary="second"), 160)
    job.answer(run("FAILED", ended=150, summary="second"), 170)  # the same answer again
    assert [(r.attempt, r.submission.error_summary) for r in job.retries()] == [
        (1, "first"),
        (2, "second"),
    ]
    assert job.done() == []


def test_four_failed_runs_end_failed_with_every_summary() -> None:
    job = Job(RETRYING)
    now = 0.0
    for number in range(1, 5):
        now += 100
        job.answer(run("FAILED", number, ended=now - 5, summary=f"run {number}"), now)
    assert [r.attempt for r in job.retries()] == [1, 2, 3]
    [done] = job.done()
    outcome = done.outcome
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.submission is not None
    assert outcome.submission.error_summary == "run 4"
    assert outcome.error_summaries == ("run 1", "run 2", "run 3", "run 4")


def test_no_retry_within_the_grace_period_ends_failed() -> None:
    job = Job(RETRYING)
    job.answer(run("FAILED", ended=60, summary="boom"), 70)
    job.answer(run("FAILED", ended=60, summary="boom"), 70 + GRACE - 1)
    assert job.done() == []
    job.answer(run("FAILED", ended=60, summary="boom"), 70 + GRACE)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.FAILED
    assert done.outcome.attempts == ()  # that one failure was the final run
    assert done.outcome.error_summaries == ("boom",)


def test_a_listed_job_awaiting_its_retry_is_looked_at_when_the_grace_period_ends() -> None:
    job = Job(RETRYING)
    job.track.via_list = True
    job.track.list_status = "FAILED"
    decision = job.answer(run("FAILED", ended=60), 70)
    # The sweeps show a new run when it starts; a look at the deadline ends the wait.
    assert job.track.phase is TrackPhase.QUEUED
    assert decision.poll_at == pytest.approx(70 + GRACE)


def test_without_retries_a_failure_ends_at_once() -> None:
    job = Job(KEEPING)
    decision = job.answer(run("FAILED", summary="boom"), 70)
    assert [d.outcome.kind for d in job.done()] == [OutcomeKind.FAILED]
    assert not decision.read_settings  # the settings were known


def test_a_stopped_run_is_not_retried() -> None:
    job = Job(RETRYING)
    job.answer(run("STOPPED"), 70)
    assert [d.outcome.kind for d in job.done()] == [OutcomeKind.FAILED]
    assert job.retries() == []


@pytest.mark.parametrize(
    ("settings", "kind"),
    [(KEEPING, OutcomeKind.FAILED), (RETRYING, None), (None, OutcomeKind.FAILED)],
)
def test_a_failure_waits_for_the_settings_it_depends_on(
    settings: JobSettings | None, kind: OutcomeKind | None
) -> None:
    job = Job()  # settings unknown: no list row carried them
    decision = job.answer(run("FAILED", summary="boom"), 70)
    assert decision.read_settings  # read them, once
    assert job.track.learned is Learned.ASKED
    assert job.done() == []
    assert not job.answer(run("FAILED", summary="boom"), 80).read_settings
    job.track.phase = TrackPhase.QUEUED  # not polling when the definition comes back
    job.learn(settings, 90)
    assert [d.outcome.kind for d in job.done()] == ([] if kind is None else [kind])
    assert [r.attempt for r in job.retries()] == ([1] if kind is None else [])


def test_settings_from_a_list_row_need_no_read() -> None:
    job = Job()
    job.track.phase = TrackPhase.AWAITING_LIST
    drivers = {
        "configs": [
            {"name": "retryJobConfig", "inputs": [{"name": "retryJobType", "value": "NONE"}]}
        ]
    }
    row = JobSummary("j", JobStatus.RUNNING, "RUNNING", raw={"driver-config-values": drivers})
    listed(job.track, row, [job.interest], moment(5), job.demand)
    assert job.track.settings is not None
    assert job.track.settings.retry is RetryType.NONE
    decision = job.answer(run("FAILED"), 70)
    assert not decision.read_settings
    assert [d.outcome.kind for d in job.done()] == [OutcomeKind.FAILED]


# ---------------------------------------------------------------------- delete after run


def deleting(disposable: DisposableType) -> JobSettings:
    return JobSettings(disposable=disposable, raw_disposable=disposable.value)


def test_a_job_deleted_after_success_succeeded() -> None:
    job = Job(deleting(DisposableType.DELETE_AFTER_SUCCEED))
    job.answer(run("RUNNING", delete=True), 10)
    job.gone(40)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.SUCCEEDED
    assert done.outcome.inferred
    assert done.outcome.deleted
    assert done.outcome.error is None
    assert done.outcome.submission is not None
    assert done.outcome.submission.status is JobStatus.RUNNING  # the last one seen


def test_a_job_deleted_whatever_its_result_ends_deleted() -> None:
    job = Job(deleting(DisposableType.DELETE))
    job.answer(run("RUNNING", delete=True), 10)
    job.gone(40)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.DELETED
    assert done.outcome.deleted
    assert not done.outcome.inferred
    error = done.outcome.error
    assert isinstance(error, JobDeletedError)
    assert error.disposable == "DELETE"
    assert "before its result was read" in str(error)
    assert "NONE or DELETE_AFTER_SUCCEED" in str(error)


def test_a_job_polled_before_its_first_run_has_its_settings_read() -> None:
    # A short one-time job may start, succeed and go between two looks: its settings
    # must be known before, since a job that is gone can no longer be read.
    job = Job()
    asked = job.answer(Submission.never_executed("j"), 10)
    assert asked.read_settings
    assert job.track.exists  # an empty answer: the job exists
    assert not job.answer(Submission.never_executed("j"), 20).read_settings  # once
    job.learn(deleting(DisposableType.DELETE_AFTER_SUCCEED), 25)
    job.gone(40)
    [done] = job.done()
    assert (done.outcome.kind, done.outcome.inferred) == (OutcomeKind.SUCCEEDED, True)


def test_a_listed_job_waiting_to_start_reads_no_definition() -> None:
    job = Job()
    new = JobSummary("j", JobStatus.NEW, "NEW")
    decision = listed(job.track, new, [job.interest], moment(10), job.demand)
    assert not decision.read_settings  # the list's rows carry them, when CDM sends them


def test_a_kept_job_deleted_mid_run_is_not_found() -> None:
    job = Job(KEEPING)
    job.answer(run("RUNNING", delete=False), 10)
    job.gone(40)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.NOT_FOUND
    assert isinstance(done.outcome.error, JobNotFoundError)
    assert not done.outcome.deleted


def test_is_delete_job_alone_says_the_result_is_unknown() -> None:
    job = Job()  # the definition could not be read
    job.track.learned = Learned.UNAVAILABLE
    job.answer(run("RUNNING", delete=True), 10)
    job.gone(40)
    [done] = job.done()
    assert done.outcome.kind is OutcomeKind.DELETED
    assert isinstance(done.outcome.error, JobDeletedError)
    assert done.outcome.error.disposable is None


def test_a_run_that_says_it_deletes_the_job_asks_for_the_settings() -> None:
    job = Job()
    assert job.answer(run("RUNNING", delete=True), 10).read_settings
    job2 = Job()
    assert not job2.answer(run("RUNNING", delete=False), 10).read_settings


@pytest.mark.parametrize(
    ("disposable", "kind"),
    [
        (DisposableType.DELETE_AFTER_SUCCEED, OutcomeKind.SUCCEEDED),  # a retry succeeded
        (DisposableType.DELETE, OutcomeKind.DELETED),
        (DisposableType.NONE, OutcomeKind.FAILED),  # gone: no retry can come now
    ],
)
def test_a_job_gone_while_its_retry_is_awaited(
    disposable: DisposableType, kind: OutcomeKind
) -> None:
    job = Job(JobSettings(disposable=disposable, retry=RetryType.RETRY_TRIPLE))
    job.answer(run("FAILED", ended=60, summary="boom"), 70)
    job.gone(100)
    [done] = job.done()
    assert done.outcome.kind is kind
    attempts = [a.error_summary for a in done.outcome.attempts]
    assert attempts == ([] if kind is OutcomeKind.FAILED else ["boom"])


def test_a_job_that_deletes_itself_whatever_the_result_is_looked_at_soon_after_its_end() -> None:
    def late_look(settings: JobSettings) -> float:
        job = Job(settings)
        # Half done after 100 s (started at 0): predicted to end at 200.
        started = AT
        first = Submission("j", JobStatus.RUNNING, "RUNNING", creation_date=started, progress=50.0)
        job.answer(first, 100)
        late = Submission("j", JobStatus.RUNNING, "RUNNING", creation_date=started, progress=50.0)
        decision = job.answer(late, 200)  # still running (stalled) at its predicted end
        assert decision.poll_at is not None
        return decision.poll_at - 200

    assert late_look(deleting(DisposableType.DELETE)) == pytest.approx(1.0)
    assert late_look(KEEPING) == pytest.approx(5.0)


# ---------------------------------------------------------------------- the rules, alone


def test_what_counts_as_the_next_run() -> None:
    failed_run = run("FAILED", 3, ended=100)
    assert is_next_run(failed_run, run("BOOTING", 4))
    assert not is_next_run(failed_run, run("FAILED", 2, ended=50))  # an older one
    assert not is_next_run(failed_run, run("FAILED", 3, ended=100))
    assert is_next_run(failed_run, run("RUNNING", 3, ended=120))
    assert is_next_run(failed_run, run("FAILED", 3, ended=200))
    assert not is_next_run(failed_run, run("NEVER_EXECUTED", 3))


def test_after_failure_and_after_deletion_tables() -> None:
    failed_run = run("FAILED")
    assert after_failure(RETRYING, Learned.KNOWN, 0, failed_run) is Step.RETRY
    assert after_failure(RETRYING, Learned.KNOWN, 3, failed_run) is Step.END
    assert after_failure(None, Learned.ASKED, 0, failed_run) is Step.ASK
    assert after_failure(None, Learned.UNAVAILABLE, 0, failed_run) is Step.END
    assert after_failure(RETRYING, Learned.KNOWN, 0, run("FAILURE_ON_SUBMIT")) is Step.END
    odd = JobSettings(disposable=DisposableType.OTHER, raw_disposable="DELETE_LATER")
    assert after_deletion(odd, run("RUNNING", delete=True), retry_awaited=False) == (
        OutcomeKind.DELETED,
        True,
    )
    assert after_deletion(odd, run("RUNNING", delete=False), retry_awaited=False) == (
        OutcomeKind.NOT_FOUND,
        False,
    )
