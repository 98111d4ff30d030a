"""The tracker's rules, without an event loop: observations in, decisions out."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from cdm_status import (
    AuthenticationError,
    JobDone,
    JobNotFoundError,
    JobSettings,
    JobStatus,
    OutcomeKind,
    PollFailed,
    PollPolicy,
    RetryType,
    ServiceUnavailableError,
    StatusChanged,
    Submission,
)
from cdm_status._models import JobSummary
from cdm_status._tracker import (
    TRANSITIONS,
    Conditions,
    Demand,
    IllegalTransition,
    Interest,
    JobTrack,
    Rules,
    TrackPhase,
    aborted,
    answered,
    catch_up,
    dispatched,
    failed,
    finish,
    first_look,
    listed,
    released,
    unlisted,
)
from cdm_status._waiter import DEFAULT_FAILURE, DEFAULT_SUCCESS

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT = Rules(success=DEFAULT_SUCCESS, failure=DEFAULT_FAILURE)  # the waiter's own


def conditions(now: float = 100.0) -> Conditions:
    # A short budget (0.1 per second): no spare budget to shrink intervals with.
    return Conditions(now=now, at=AT, policy=PollPolicy(jitter=0.0), per_second=0.1)


def sub(status: str, created: datetime | None = None) -> Submission:
    return Submission("j", JobStatus.parse(status), status, creation_date=created)


def polling(name: str = "j") -> JobTrack:
    track = JobTrack(name)
    dispatched(track)
    return track


def test_the_table_names_every_state_and_releases_for_good() -> None:
    assert set(TRANSITIONS) == set(TrackPhase)
    assert TRANSITIONS[TrackPhase.RELEASED] == frozenset()
    for state in TrackPhase:
        if state is not TrackPhase.RELEASED:
            assert TrackPhase.RELEASED in TRANSITIONS[state]


@pytest.mark.parametrize(("start", "wanted"), list(itertools.product(TrackPhase, TrackPhase)))
def test_every_move_follows_the_table(start: TrackPhase, wanted: TrackPhase) -> None:
    track = JobTrack("j", phase=start)
    if wanted in TRANSITIONS[start]:
        track.move(wanted)
        assert track.phase is wanted
    else:
        with pytest.raises(IllegalTransition, match=f"{start.value} -> {wanted.value}"):
            track.move(wanted)
        assert track.phase is start


def test_one_request_per_job_at_a_time() -> None:
    track = polling()
    with pytest.raises(IllegalTransition):
        dispatched(track)
    released(track, Demand())
    with pytest.raises(IllegalTransition):
        dispatched(track)  # a released job is never polled again


def test_an_answer_tells_every_interest_and_plans_the_next_poll() -> None:
    track, demand = polling(), Demand()
    a, b = Interest("j", DEFAULT, key=1), Interest("j", DEFAULT, key=2)
    decision = answered(track, sub("RUNNING"), [a, b], conditions(), demand)
    assert [(i.key, type(e).__name__) for i, e in decision.events] == [
        (1, "StatusChanged"),
        (2, "StatusChanged"),
    ]
    change = decision.events[0][1]
    assert isinstance(change, StatusChanged)
    assert (change.previous, change.current, change.at) == (None, JobStatus.RUNNING, AT)
    assert track.phase is TrackPhase.QUEUED
    assert decision.poll_at == pytest.approx(105.0)  # running_interval, no jitter
    assert demand.total == pytest.approx(1 / 5.0)
    # The same status again: nothing to say, only the next poll.
    again = answered(polling(), sub("RUNNING"), [a, b], conditions(110.0), Demand())
    assert again.events == []


def test_each_subscription_ends_by_its_own_rules() -> None:
    track = polling()
    track.settings = JobSettings(retry=RetryType.NONE)  # a failure is final
    strict = Interest("j", DEFAULT, key=1)
    lenient = Interest("j", Rules(success=frozenset(), failure=frozenset()), key=2)
    decision = answered(track, sub("FAILED"), [strict, lenient], conditions(), Demand())
    done = [(i.key, e.outcome.kind) for i, e in decision.events if isinstance(e, JobDone)]
    assert done == [(1, OutcomeKind.FAILED)]
    assert strict.done
    assert not lenient.done
    assert decision.poll_at is not None  # still watched for the other one


def test_since_makes_an_old_run_not_started_for_that_subscription_only() -> None:
    since = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    old = sub("SUCCEEDED", created=datetime(2026, 1, 1, 11, tzinfo=timezone.utc))
    fresh = Interest("j", Rules(DEFAULT.success, DEFAULT.failure, since=since), key=1)
    anyrun = Interest("j", DEFAULT, key=2)
    decision = answered(polling(), old, [fresh, anyrun], conditions(), Demand())
    seen = {(i.key, getattr(e, "current", None), type(e).__name__) for i, e in decision.events}
    assert seen == {
        (1, JobStatus.NEVER_EXECUTED, "StatusChanged"),
        (2, JobStatus.SUCCEEDED, "StatusChanged"),
        (2, None, "JobDone"),
    }
    assert not fresh.done
    assert anyrun.done


SKEWS = [-3 * 365 * 86400.0, -900.0, 900.0, 3 * 365 * 86400.0]


def seen_as(submission: Submission, interest: Interest, offset: float) -> JobStatus | None:
    """What ``interest`` is told of ``submission`` with the server ``offset`` s ahead."""
    at = Conditions(now=100.0, at=AT, policy=PollPolicy(), per_second=0.1, server_offset=offset)
    answered(polling(), submission, [interest], at, Demand())
    return interest.status


@pytest.mark.parametrize("offset", SKEWS)
def test_a_since_read_on_the_local_clock_meets_the_servers_dates_through_the_offset(
    offset: float,
) -> None:
    since = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)  # read here, before the start
    rules = Rules(DEFAULT.success, DEFAULT.failure, since=since)
    on_server = since + timedelta(seconds=offset)
    before = sub("SUCCEEDED", created=on_server - timedelta(seconds=5))
    after = sub("BOOTING", created=on_server + timedelta(seconds=2))
    assert seen_as(before, Interest("j", rules, key=1), offset) is JobStatus.NEVER_EXECUTED
    assert seen_as(after, Interest("j", rules, key=1), offset) is JobStatus.BOOTING


@pytest.mark.parametrize("offset", [*SKEWS, 0.3])
def test_a_since_that_is_a_runs_creation_date_names_that_run_on_the_servers_clock(
    offset: float,
) -> None:
    # What a start returned (the operator, `cdm-status run`): whatever the offset is
    # estimated at, that run counts, as do later ones (a retry); earlier ones do not.
    created = datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    interest = Interest("j", Rules(DEFAULT.success, DEFAULT.failure, since=created), key=1)
    assert seen_as(sub("BOOTING", created=created), interest, offset) is JobStatus.BOOTING
    retried = sub("RUNNING", created=created + timedelta(seconds=60))
    assert seen_as(retried, interest, offset) is JobStatus.RUNNING
    older = sub("RUNNING", created=created - timedelta(seconds=1))
    assert seen_as(older, interest, offset) is JobStatus.NEVER_EXECUTED


def test_failures_are_ridden_out_then_end_the_job() -> None:
    interest = Interest("j", DEFAULT, key=1)
    track = polling()
    error = ServiceUnavailableError("HTTP 503", status_code=503)
    decision = failed(track, error, [interest], conditions())
    assert [type(e) for _, e in decision.events] == [PollFailed]
    assert decision.poll_at == pytest.approx(102.0)  # failure_backoff
    dispatched(track)
    assert failed(track, error, [interest], conditions()).poll_at == pytest.approx(104.0)

    # A job never seen to exist gets not_found_grace answers before it ends NOT_FOUND.
    missing, interest = polling(), Interest("j", DEFAULT, key=1)
    not_found = JobNotFoundError("no such job", status_code=404)
    for _ in range(2):
        assert not any(
            isinstance(e, JobDone)
            for _, e in failed(missing, not_found, [interest], conditions()).events
        )
        dispatched(missing)
    last = failed(missing, not_found, [interest], conditions())
    assert [e.outcome.kind for _, e in last.events if isinstance(e, JobDone)] == [
        OutcomeKind.NOT_FOUND
    ]


def test_refused_credentials_are_everybodys_end() -> None:
    interest = Interest("j", DEFAULT, key=1)
    error = AuthenticationError("HTTP 401", status_code=401)
    decision = failed(polling(), error, [interest], conditions())
    assert decision.credentials_refused is error
    assert interest.done


def test_the_list_takes_over_and_asks_for_details_first() -> None:
    track, demand, interest = JobTrack("j"), Demand(), Interest("j", DEFAULT, key=1)
    # A queued routine poll gives way to the list; a job that never ran is reported
    # from the list alone.
    decision = listed(
        track, JobSummary("j", JobStatus.NEW, "NEW"), [interest], conditions(), demand
    )
    assert track.phase is TrackPhase.AWAITING_LIST
    assert [getattr(e, "current", None) for _, e in decision.events] == [JobStatus.NEVER_EXECUTED]
    # The list saw it change: one status request, before every routine poll.
    change = listed(
        track, JobSummary("j", JobStatus.RUNNING, "RUNNING"), [interest], conditions(), demand
    )
    assert (track.phase, change.poll_at, change.urgent) == (TrackPhase.QUEUED, 100.0, True)
    assert not change.ending  # a start adds detail; an end (below) is confirmed first
    dispatched(track)
    # Its answer agrees with the list: no routine poll, the list keeps watching.
    agreed = answered(track, sub("RUNNING"), [interest], conditions(), demand)
    assert (track.phase, agreed.poll_at) == (TrackPhase.AWAITING_LIST, None)
    # A sweep that does not show it any more hands it back to per-job polling.
    back = unlisted(track, conditions(120.0), demand)
    assert (track.phase, back.poll_at, track.via_list) == (TrackPhase.QUEUED, 120.0, False)
    assert track.off_list  # not handed to a sweep again...
    listed(track, JobSummary("j", JobStatus.RUNNING, "RUNNING"), [interest], conditions(), demand)
    assert (track.via_list, track.off_list) == (True, False)  # ...unless one shows it
    end = listed(
        track, JobSummary("j", JobStatus.SUCCEEDED, "SUCCEEDED"), [interest], conditions(), demand
    )
    assert (end.urgent, end.ending) == (True, True)


def test_a_cut_off_request_keeps_its_place() -> None:
    track = polling()
    decision = aborted(track, due=42.0)
    assert (track.phase, decision.poll_at, decision.events) == (TrackPhase.QUEUED, 42.0, [])


def test_a_job_ends_once_per_interest() -> None:
    interest = Interest("j", DEFAULT, key=1)
    first = finish(interest, OutcomeKind.CANCELLED)
    assert first is not None
    assert first.outcome.kind is OutcomeKind.CANCELLED
    assert finish(interest, OutcomeKind.TIMED_OUT) is None


def test_a_late_subscriber_hears_the_last_answer_at_once() -> None:
    track = polling()
    answered(track, sub("RUNNING"), [Interest("j", DEFAULT, key=1)], conditions(), Demand())
    late = Interest("j", DEFAULT, key=2)
    events = catch_up(track, late, conditions())
    assert [(i.key, getattr(e, "current", None)) for i, e in events] == [(2, JobStatus.RUNNING)]
    assert catch_up(JobTrack("k"), Interest("k", DEFAULT, key=3), conditions()) == []


def test_jobs_handed_over_together_are_first_looked_at_the_pace_of_the_budget() -> None:
    # 2 requests a second, a share of 1.6: the first 8 (what 5 s serves) at once, then
    # one every 0.625 s. All due at once, a job seen booting would be looked at again
    # only after the whole first round (10 minutes for 1,000 jobs).
    budget = Conditions(now=100.0, at=AT, policy=PollPolicy(jitter=0.0), per_second=2.0)
    looks = [first_look(queued, budget) for queued in (0, 7, 8, 9, 999)]
    assert looks == pytest.approx([100.0, 100.0, 100.0, 100.625, 100.0 + 999 / 1.6 - 5.0])
    tracks = [JobTrack(f"j{i}", phase=TrackPhase.AWAITING_LIST, via_list=True) for i in range(10)]
    demand = Demand()
    decisions = [unlisted(track, budget, demand, queued) for queued, track in enumerate(tracks)]
    assert [decision.poll_at for decision in decisions] == [100.0] * 9 + [100.625]
    # Each first look is owed then: nothing is known of these jobs, and follow-up looks
    # at the ones already seen must not push the last of them back.
    assert all(decision.urgent for decision in decisions)
    # Until their first look they count among the jobs waiting to start: the waiting
    # jobs' bound counts all ten, not only those seen so far.
    assert (demand.waiting, demand.polled) == (10, 10)
