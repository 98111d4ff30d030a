"""The poll schedule is pure: next-poll times per state, jitter bounds, due order."""

from __future__ import annotations

import pytest

from cdm_status import JobStatus, PollPolicy
from cdm_status._schedule import DueQueue, RequestWindow
from tests.support.resources import held_bytes

POLICY = PollPolicy(
    starting_interval=5.0,
    running_interval=5.0,
    running_growth=0.1,
    max_interval=60.0,
    unknown_interval=10.0,
    failure_backoff=2.0,
    jitter=0.1,
)


def test_booting_jobs_are_polled_soon_however_long_they_boot() -> None:
    assert POLICY.interval(JobStatus.BOOTING, 0.0) == 5.0
    assert POLICY.interval(JobStatus.BOOTING, 3600.0) == 5.0


@pytest.mark.parametrize("status", [JobStatus.NEVER_EXECUTED, JobStatus.NEW, JobStatus.PENDING])
def test_waiting_jobs_are_polled_less_the_longer_they_wait(status: JobStatus) -> None:
    assert POLICY.interval(status, 0.0) == 5.0
    assert POLICY.interval(status, 100.0) == pytest.approx(15.0)
    assert POLICY.interval(status, 1000.0) == pytest.approx(105.0)
    assert POLICY.interval(status, 36_000.0) == POLICY.waiting_max_interval


def test_spare_budget_shrinks_intervals_down_to_the_floor() -> None:
    # Watched jobs ask for 0.4 polls/s; the watch may use 0.8 x 2/s: intervals halve.
    assert POLICY.spare_budget_scale(demand=0.4, budget=2.0) == pytest.approx(0.25)
    assert POLICY.spare_budget_scale(demand=5.0, budget=2.0) == 1.0
    assert POLICY.spare_budget_scale(demand=0.0, budget=2.0) == 1.0
    flat = PollPolicy(jitter=0.0, min_interval=2.0)
    assert flat.next_poll(JobStatus.RUNNING, 10_000.0, 0.0, 0.5, scale=0.25) == 15.0
    assert flat.next_poll(JobStatus.BOOTING, 0.0, 0.0, 0.5, scale=0.01) == 2.0
    # An interval already under the floor is never stretched to it.
    quick = PollPolicy(jitter=0.0, starting_interval=1.0, min_interval=2.0)
    assert quick.next_poll(JobStatus.BOOTING, 0.0, 0.0, 0.5, scale=0.5) == 1.0


def test_running_interval_grows_with_time_in_state_up_to_the_cap() -> None:
    assert POLICY.interval(JobStatus.RUNNING, 0.0) == 5.0
    assert POLICY.interval(JobStatus.RUNNING, 100.0) == pytest.approx(15.0)
    assert POLICY.interval(JobStatus.RUNNING, 300.0) == pytest.approx(35.0)
    assert POLICY.interval(JobStatus.RUNNING, 10_000.0) == 60.0


@pytest.mark.parametrize("status", [JobStatus.UNKNOWN, JobStatus.OTHER])
def test_unknown_statuses_are_asked_again(status: JobStatus) -> None:
    assert POLICY.interval(status, 500.0) == 10.0


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999999])
def test_jitter_stays_within_bounds(draw: float) -> None:
    at = POLICY.next_poll(JobStatus.BOOTING, 0.0, now=100.0, draw=draw)
    assert 100.0 + 4.5 <= at < 100.0 + 5.5


def test_jitter_spreads_jobs_that_started_together() -> None:
    times = {POLICY.next_poll(JobStatus.RUNNING, 0.0, 0.0, draw / 10) for draw in range(10)}
    assert len(times) == 10


def test_failure_backoff_doubles_up_to_the_cap() -> None:
    flat = PollPolicy(failure_backoff=2.0, jitter=0.0, max_interval=60.0)
    assert [flat.retry_poll(n, 0.0, 0.5) for n in (1, 2, 3, 4, 5, 6, 50)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"starting_interval": 0},
        {"max_interval": -1},
        {"jitter": 1.0},
        {"running_growth": -0.1},
        {"not_found_grace": 0},
        {"unknown_interval": float("inf")},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each message names its field
        PollPolicy(**kwargs)  # type: ignore[arg-type]


def test_due_queue_gives_the_job_due_longest_first() -> None:
    queue = DueQueue()
    queue.schedule("late", 50.0)
    queue.schedule("oldest", 10.0)
    queue.schedule("middle", 30.0)
    assert queue.pop_due(now=5.0) is None
    assert [queue.pop_due(now=100.0) for _ in range(3)] == ["oldest", "middle", "late"]
    assert queue.pop_due(now=100.0) is None
    assert queue.next_due() is None


def test_due_queue_confirms_ends_before_other_changes_and_routine_polls() -> None:
    queue = DueQueue()
    queue.schedule("routine", 1.0)
    queue.schedule("booted", 2.0, urgent=True)
    queue.schedule("ended", 3.0, urgent=True, ending=True)
    queue.schedule("later end", 50.0, ending=True)
    assert (queue.is_urgent("ended"), queue.is_ending("ended")) == (True, True)
    assert (queue.is_urgent("booted"), queue.is_ending("booted")) == (True, False)
    # An end not due yet holds nothing back; due ones go first whatever their time.
    assert [queue.pop_due(now=10.0) for _ in range(4)] == ["ended", "booted", "routine", None]
    assert queue.pop_due(now=50.0) == "later end"


def test_due_queue_puts_looks_at_predicted_ends_after_owed_looks_before_routine_ones() -> None:
    queue = DueQueue()
    queue.schedule("refresh", 1.0)
    queue.schedule("predicted end", 2.0, aimed=True)
    queue.schedule("owed", 3.0, urgent=True)
    assert not queue.is_urgent("predicted end")  # rescheduling it keeps its own level
    assert [queue.pop_due(now=10.0) for _ in range(4)] == [
        "owed",
        "predicted end",
        "refresh",
        None,
    ]


def test_due_queue_serves_a_routine_look_before_the_others_once_it_is_owed() -> None:
    # A look at a table seen running in the first round, due at 5 s, owed at 500 s: in
    # due order while the queue keeps up, then before every routine look (and with the
    # urgent ones, by when each became owed) however many came due before it.
    queue = DueQueue()
    queue.schedule("follow-up", 5.0, owed_at=500.0)
    queue.schedule("first look", 1.0)
    assert queue.owed_at("follow-up") == 500.0
    assert queue.pop_due(now=10.0) == "first look"
    queue.schedule("first look", 2.0)  # still due before it: served first before 500 s
    assert queue.pop_due(now=499.0) == "first look"
    queue.schedule("first look", 3.0)
    queue.schedule("floor look", 501.0, urgent=True)
    assert [queue.pop_due(now=600.0) for _ in range(4)] == [
        "follow-up",  # owed at 500 s: before the urgent look due at 501 s
        "floor look",
        "first look",
        None,
    ]
    assert queue.owed_at("follow-up") is None


def test_due_queue_an_entry_owed_by_the_time_it_is_due_is_urgent() -> None:
    queue = DueQueue()
    queue.schedule("late", 10.0, owed_at=5.0)
    assert queue.is_urgent("late")
    queue.schedule("late", 10.0, owed_at=20.0)  # rescheduled: its new owed time holds
    assert not queue.is_urgent("late")
    queue.schedule("routine", 1.0)
    assert queue.pop_due(now=15.0) == "routine"
    queue.discard("late")  # gone, and never served as owed
    assert (queue.pop_due(now=30.0), queue.owed_at("late")) == (None, None)


def test_due_queue_keeps_owed_times_through_compaction() -> None:
    queue = DueQueue()
    queue.schedule("owed", 40.0, owed_at=50.0)
    for round_ in range(1_000):  # enough replaced entries to rebuild the heaps
        queue.schedule("busy", float(round_), owed_at=1e9)
    queue.schedule("routine", 0.0)
    assert queue.pop_due(now=60.0) == "owed"


def test_due_queue_rescheduling_replaces_the_old_time() -> None:
    queue = DueQueue()
    queue.schedule("a", 10.0)
    queue.schedule("b", 20.0)
    queue.schedule("a", 30.0)
    assert len(queue) == 2
    assert queue.next_due() == 20.0
    assert queue.pop_due(25.0) == "b"
    assert queue.pop_due(25.0) is None
    queue.discard("a")
    assert queue.next_due() is None
    assert "a" not in queue


def test_due_queue_rescheduled_for_ever_holds_one_entry_per_job() -> None:
    # A job rescheduled again and again (urgent looks, promotions) without being popped:
    # the replaced entries are dropped, not kept until they reach the top of the heap.
    queue = DueQueue()
    weights = []
    for round_ in range(10_000):
        queue.schedule("a", float(round_), urgent=round_ % 2 == 0)
        queue.schedule("b", 1e9 - round_)
        if round_ in (100, 9_999):
            weights.append(held_bytes(queue))
    assert len(queue) == 2
    assert weights[1] <= weights[0] + 8_192  # a few dozen replaced entries, not 20,000
    assert queue.pop_due(now=1e9) == "a"


def test_request_window_holds_only_its_span() -> None:
    # Requests noted, the window never asked (a watch polling job by job): what left
    # the window is forgotten all the same.
    window = RequestWindow(span=60.0)
    weights = []
    for second in range(10_000):
        window.sent(float(second))
        if second in (100, 9_999):
            weights.append(held_bytes(window))
    assert weights[1] <= weights[0]  # a minute of requests, not 10,000
    assert window.count(9_999.0) == 60
