"""Running jobs are looked at when their progress says they end: the tracker's plans, and
the budget window that bounds the looks between list sweeps. No event loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cdm_status import JobDone, JobStatus, OutcomeKind, PollPolicy, Submission
from cdm_status._models import JobSummary
from cdm_status._schedule import DueQueue, RequestWindow
from cdm_status._siblings import SiblingPolicy
from cdm_status._tracker import (
    BUSY_STATUS_USE,
    Conditions,
    Demand,
    IllegalTransition,
    Interest,
    JobTrack,
    Rules,
    TrackPhase,
    answered,
    dispatched,
    likely_starts,
    listed,
    look_between_sweeps,
    released,
)

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
DEFAULT = Rules(success=frozenset({JobStatus.SUCCEEDED}), failure=frozenset({JobStatus.FAILED}))


def conditions(now: float, status_use: float = 0.0) -> Conditions:
    # The wall clock reads AT + now: a run created at AT started at monotonic 0.
    # A short budget (0.1 per second): no spare budget to shrink intervals with.
    return Conditions(
        now=now,
        at=AT + timedelta(seconds=now),
        policy=PollPolicy(jitter=0.0),
        per_second=0.1,
        status_use=status_use,
    )


def running(progress: float | None, status: str = "RUNNING") -> Submission:
    return Submission("j", JobStatus.parse(status), status, creation_date=AT, progress=progress)


def polling(track: JobTrack) -> JobTrack:
    dispatched(track)
    return track


def test_a_steady_run_is_looked_at_near_its_end_not_every_few_seconds() -> None:
    track, demand, interest = JobTrack("j"), Demand(), Interest("j", DEFAULT, key=1)
    # 50% after 100 s: the start says it ends at 200 s; one reading is not a pace yet,
    # so the next look is today's running interval (5 s).
    first = answered(polling(track), running(50.0), [interest], conditions(100.0), demand)
    assert first.poll_at == pytest.approx(105.0)
    # 52.5% at 105 s agrees (end at 200 s): confirmed, looked at again only at the end,
    # held within EstimatePolicy.max_wait (60 s).
    second = answered(polling(track), running(52.5), [interest], conditions(105.0), demand)
    assert second.poll_at == pytest.approx(165.0)
    assert demand.total == pytest.approx(1 / 60.0)  # its share of the budget goes to others
    assert (first.aims_at_end, second.aims_at_end) == (False, False)  # refreshes: routine
    # At 165 s (84.2%): the end, 35 s away, is looked at when due, before the routine
    # polls due with it (after the looks the floor owes).
    third = answered(polling(track), running(82.5), [interest], conditions(165.0), demand)
    assert third.poll_at == pytest.approx(200.0)
    assert (third.aims_at_end, third.urgent) == (True, False)


@pytest.mark.parametrize("progress", [None, 0.0, -1.0])
def test_progress_that_says_nothing_keeps_todays_interval(progress: float | None) -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    for now, expected in ((100.0, 105.0), (105.0, 110.5)):
        decision = answered(
            polling(track), running(progress), [interest], conditions(now), Demand()
        )
        # running_interval + running_growth x the time running (since the first look)
        assert decision.poll_at == pytest.approx(expected)


def test_a_new_run_starts_a_new_estimate() -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    answered(polling(track), running(50.0), [interest], conditions(100.0), Demand())
    answered(polling(track), running(52.5), [interest], conditions(105.0), Demand())
    assert track.progress is not None
    assert track.progress.predicted_end() == pytest.approx(200.0)
    answered(polling(track), running(None, "BOOTING"), [interest], conditions(110.0), Demand())
    assert track.progress is None
    later = Submission("j", JobStatus.RUNNING, "RUNNING", creation_date=AT + timedelta(seconds=110))
    answered(polling(track), later, [interest], conditions(120.0), Demand())
    assert track.progress is not None
    assert track.progress.started == pytest.approx(110.0)


def listed_running(track: JobTrack, interest: Interest, now: float, progress: float | None):  # type: ignore[no-untyped-def]
    """The list shows the job RUNNING; its detail fetch answers with ``progress``."""
    listed(
        track, JobSummary("j", JobStatus.RUNNING, "RUNNING"), [interest], conditions(now), Demand()
    )
    assert track.phase is TrackPhase.QUEUED
    return answered(polling(track), running(progress), [interest], conditions(now), Demand())


def test_a_listed_running_job_gets_a_look_between_sweeps() -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    decision = listed_running(track, interest, 100.0, 50.0)
    # The list keeps covering it: no routine poll, but a look between sweeps, halfway to
    # the end its start predicts (200 s) to measure its pace; the sweeps cover it until
    # then, so no refresh at today's 5 s interval. A look before the end waits for the
    # looks at ends.
    assert (track.phase, decision.poll_at) == (TrackPhase.AWAITING_LIST, None)
    assert decision.between_sweeps_at == pytest.approx(150.0)
    assert not decision.aims_at_end
    look_between_sweeps(track)
    assert track.phase is TrackPhase.POLLING
    again = answered(track, running(75.0), [interest], conditions(150.0), Demand())
    assert (track.phase, again.poll_at) == (TrackPhase.AWAITING_LIST, None)
    # Two paces agree on 200 s, but over a quarter of the run (progress is rounded, a
    # pace may grow): the looks close in, half way to the end each time, until readings
    # over 90% of what was left confirm it; then the look is at the end, and goes first.
    looks = [again.between_sweeps_at]
    while not again.aims_at_end:
        now = looks[-1]
        look_between_sweeps(track)
        again = answered(track, running(now / 2.0), [interest], conditions(now), Demand())
        looks.append(again.between_sweeps_at)
    assert looks == pytest.approx([175.0, 187.5, 193.75, 200.0])
    look_between_sweeps(track)
    late = answered(track, running(99.0), [interest], conditions(200.0), Demand())
    # Still running at its end: looked at again soon, still first.
    assert late.between_sweeps_at == pytest.approx(201.0)
    assert late.aims_at_end


def test_on_a_busy_budget_a_steady_run_is_looked_at_at_its_end_not_every_minute() -> None:
    # As above, with the last minute's status requests at the busy mark: once two
    # readings agree, the next look is the end itself (95 s away), not a refresh in
    # 60 s that a busy queue would serve minutes late; at most five minutes ahead.
    # 100 jobs polled at 0.1 a second: the floor's bound is 1,000 s.
    track, demand, interest = JobTrack("j"), Demand(), Interest("j", DEFAULT, key=1)
    for other in range(99):
        demand.set(JobTrack(f"other{other}"), 0.001)
    busy = BUSY_STATUS_USE
    answered(polling(track), running(50.0), [interest], conditions(100.0, busy), demand)
    second = answered(polling(track), running(52.5), [interest], conditions(105.0, busy), demand)
    assert second.poll_at == pytest.approx(200.0)
    assert second.aims_at_end
    long_run, interest = JobTrack("k"), Interest("k", DEFAULT, key=1)
    answered(polling(long_run), running(1.0), [interest], conditions(100.0, busy), demand)
    far = answered(polling(long_run), running(1.05), [interest], conditions(105.0, busy), demand)
    assert far.poll_at == pytest.approx(405.0)  # the end is 9,900 s away
    assert not far.aims_at_end


@pytest.mark.parametrize(
    ("status_use", "looks"),
    [
        (0.5, [150.0, 175.0, 187.5, 193.75, 200.0]),  # spare budget: close in on the end
        (BUSY_STATUS_USE, [150.0, 200.0]),  # busy: two readings agree, look at the end
    ],
)
def test_a_busy_status_budget_looks_straight_at_the_end(
    status_use: float, looks: list[float]
) -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    listed(
        track,
        JobSummary("j", JobStatus.RUNNING, "RUNNING"),
        [interest],
        conditions(100.0),
        Demand(),
    )
    decision = answered(
        polling(track), running(50.0), [interest], conditions(100.0, status_use), Demand()
    )
    planned = [decision.between_sweeps_at]
    while not decision.aims_at_end:
        now = planned[-1]
        assert now is not None
        look_between_sweeps(track)
        decision = answered(
            track, running(now / 2.0), [interest], conditions(now, status_use), Demand()
        )
        planned.append(decision.between_sweeps_at)
    assert planned == pytest.approx(looks)


def test_a_terminal_answer_between_sweeps_ends_the_job_at_once() -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    listed_running(track, interest, 100.0, 50.0)
    look_between_sweeps(track)
    done = answered(track, running(100.0, "SUCCEEDED"), [interest], conditions(201.0), Demand())
    ends = [e.outcome.kind for _, e in done.events if isinstance(e, JobDone)]
    assert ends == [OutcomeKind.SUCCEEDED]
    assert (track.phase, done.poll_at, done.between_sweeps_at) == (
        TrackPhase.AWAITING_LIST,
        None,
        None,
    )


def listed_as(track: JobTrack, interest: Interest, status: str, now: float):  # type: ignore[no-untyped-def]
    """The list shows the job in ``status``."""
    summary = JobSummary("j", JobStatus.parse(status), status)
    return listed(track, summary, [interest], conditions(now), Demand())


def test_a_page_read_before_the_answer_is_behind_it_not_in_disagreement() -> None:
    # The page showed the table BOOTING; by the detail fetch it runs. The list is only
    # behind: the job stays with the list (no per-job polling until the list agrees),
    # its progress plans the looks between sweeps, and when the page catches up with
    # RUNNING nothing new is fetched.
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    assert listed_as(track, interest, "BOOTING", 100.0).urgent
    decision = answered(polling(track), running(50.0), [interest], conditions(100.0), Demand())
    assert (track.phase, decision.poll_at) == (TrackPhase.AWAITING_LIST, None)
    assert decision.between_sweeps_at == pytest.approx(150.0)
    caught_up = listed_as(track, interest, "RUNNING", 110.0)
    assert (track.phase, caught_up.poll_at, caught_up.events) == (
        TrackPhase.AWAITING_LIST,
        None,
        [],
    )
    # Its end on the list is fetched: the final counters come from the status API.
    ended = listed_as(track, interest, "SUCCEEDED", 190.0)
    assert (track.phase, ended.poll_at, ended.urgent) == (TrackPhase.QUEUED, 190.0, True)


@pytest.mark.parametrize(
    ("list_status", "answer"),
    [
        ("FAILED", "RUNNING"),  # the list shows an older run
        ("RUNNING", "BOOTING"),  # the list ahead of the status API
        ("PENDING", "BOOTING"),  # not running yet: no progress plans a look
    ],
)
def test_a_list_that_the_next_sweep_may_not_settle_keeps_the_job_polled(
    list_status: str, answer: str
) -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    listed_as(track, interest, list_status, 100.0)
    decision = answered(
        polling(track), running(10.0, answer), [interest], conditions(100.0), Demand()
    )
    assert track.phase is TrackPhase.QUEUED
    assert decision.poll_at is not None
    assert decision.poll_at < 170.0


def test_a_listed_job_without_progress_is_refreshed_at_todays_interval() -> None:
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    track.via_list = True
    decision = listed_running(track, interest, 100.0, None)
    assert decision.between_sweeps_at == pytest.approx(105.0)
    assert not decision.aims_at_end


def test_only_a_job_the_list_covers_is_looked_at_ahead() -> None:
    queued = JobTrack("j")  # a routine poll is already planned
    with pytest.raises(IllegalTransition):
        look_between_sweeps(queued)
    on_its_way = polling(JobTrack("j", via_list=True))
    with pytest.raises(IllegalTransition):
        look_between_sweeps(on_its_way)  # never two requests at once for one job
    assert on_its_way.phase is TrackPhase.POLLING


def test_the_window_keeps_looks_under_the_share_of_the_budget() -> None:
    window = RequestWindow()
    for n in range(95):
        window.sent(n * 0.5)  # 95 requests from 0 s to 47 s
    # One more is 96 = 0.8 x 120 over the last minute: allowed; a 97th is not.
    assert window.room(47.5, per_minute=120.0, share=0.8)
    window.sent(47.5)
    assert not window.room(48.0, per_minute=120.0, share=0.8)
    assert window.use(48.0, per_minute=120.0, share=0.8) == pytest.approx(1.0)
    assert window.use(48.0, per_minute=120.0, share=1.0) == pytest.approx(0.8)
    assert window.free_at(48.0) == pytest.approx(60.0)  # the request at 0 s leaves then
    assert window.count(60.0) == 95  # the window is (0 s, 60 s]
    assert window.room(60.0, per_minute=120.0, share=0.8)
    assert window.room(60.0, per_minute=60.0, share=1.0) is False  # a smaller budget


def tracked(status: JobStatus | None, phase: TrackPhase = TrackPhase.QUEUED) -> JobTrack:
    track = JobTrack("t", phase=phase)
    track.status = status
    return track


def test_when_a_table_ends_the_next_waiting_ones_are_looked_at_soon() -> None:
    group = [f"t{n}" for n in range(1, 8)]
    waiting = JobStatus.NEVER_EXECUTED
    tracks = {
        # t1 ended: no longer tracked. t2, t3 run.
        "t2": tracked(JobStatus.RUNNING),
        "t3": tracked(JobStatus.RUNNING),
        "t4": tracked(waiting, TrackPhase.POLLING),  # its answer is on the way already
        "t5": tracked(waiting),
        "t6": tracked(waiting),
        "t7": tracked(waiting),
    }
    policy = SiblingPolicy(promote=3, soon=3.0)
    assert likely_starts(group, tracks, 50.0, policy) == [("t5", 53.0), ("t6", 53.0)]
    # Jobs the list covers are never likely_starts: the list sees their start.
    tracks["t5"].via_list = True
    assert likely_starts(group, tracks, 50.0, policy) == [("t6", 53.0), ("t7", 53.0)]


def test_an_urgent_look_not_due_yet_holds_back_no_routine_poll() -> None:
    queue = DueQueue()
    queue.schedule("routine", 10.0)
    queue.schedule("likely_starts", 53.0, urgent=True)
    assert queue.next_due() == 10.0
    assert queue.pop_due(50.0) == "routine"
    queue.schedule("routine", 40.0)
    assert queue.pop_due(53.0) == "likely_starts"  # once due, before every routine entry
    assert queue.is_urgent("routine") is False
    assert queue.pop_due(53.0) == "routine"


@pytest.mark.parametrize(
    ("running", "waiting", "expected"),
    [
        (0.0, 2, 5.0),  # a small watch: today's interval
        (0.6, 199, 200 / 1.0),  # 200 waiting share what 0.6/s of running leaves of 1.6/s
        # Running jobs leave less: the waiting ones keep their own bound all the same,
        # one look at each of them at the budget share's rate (800 / 1.6 = 500 s)...
        (1.0, 799, 800 / 1.6),
        (2.0, 799, 800 / 1.6),
        # ...or waiting_max_interval when that is longer.
        (2.0, 99, 300.0),
    ],
)
def test_waiting_jobs_share_what_running_ones_leave(
    running: float, waiting: int, expected: float
) -> None:
    demand = Demand(total=running + 0.6, waiting=waiting, waiting_total=0.6)
    budget = Conditions(now=100.0, at=AT, policy=PollPolicy(jitter=0.0), per_second=2.0)
    track, interest = JobTrack("j"), Interest("j", DEFAULT, key=1)
    decision = answered(polling(track), Submission.never_executed("j"), [interest], budget, demand)
    assert decision.poll_at == pytest.approx(100.0 + expected)
    assert demand.waiting == waiting + 1
    assert track.waiting
    released(track, demand)  # it ended elsewhere: no longer counted
    assert (demand.waiting, demand.waiting_total) == (waiting, pytest.approx(0.6))
