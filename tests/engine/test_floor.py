"""The floor no rule may break, as a property of the pure tracker.

Random answer sequences (waiting, booting, running with any progress, stalls, starts in
any order), with demand rising and falling: every look the tracker plans for a job polled
by itself comes within its bound, and is owed (served before the routine polls) by then.
A job waiting to start: ``waiting_ceiling`` (that is ``max(waiting_max_interval, W /
rate)``) stretched by jitter at most; any other job: planned within ``max_interval``,
stretched by jitter at most, and owed within ``polite_bound`` (a polite loop's ``N /
rate``, or that ``max_interval``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdm_status import JobStatus, PollPolicy, Submission
from cdm_status._schedule import DueQueue
from cdm_status._tracker import (
    Conditions,
    Demand,
    Interest,
    JobTrack,
    Rules,
    TrackPhase,
    answered,
    dispatched,
    polite_bound,
    waiting_ceiling,
)

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
RULES = Rules(success=frozenset({JobStatus.SUCCEEDED}), failure=frozenset({JobStatus.FAILED}))
POLICY = PollPolicy()

answers = st.one_of(
    st.just(("NEVER_EXECUTED", None)),
    st.just(("PENDING", None)),
    st.just(("BOOTING", None)),
    st.tuples(st.just("RUNNING"), st.one_of(st.none(), st.floats(0.0, 99.0))),
    st.just(("UNKNOWN", None)),
)


@given(
    steps=st.lists(
        st.tuples(
            answers,
            st.floats(0.0, 4000.0),  # what the other jobs ask for, polls a second
            st.integers(0, 5000),  # other jobs seen waiting
            st.floats(0.0, 1.0),  # the jitter draw
        ),
        min_size=1,
        max_size=40,
    ),
    per_second=st.sampled_from([0.2, 2.0, 20.0]),
)
def test_no_planned_look_breaks_the_floor(
    steps: list[tuple[tuple[str, float | None], float, int, float]], per_second: float
) -> None:
    track, interest = JobTrack("j"), Interest("j", RULES, key=1)
    now = 0.0
    for (status, progress), others, waiting_others, draw in steps:
        demand = Demand(total=others / 1000.0, waiting=waiting_others, waiting_total=0.0)
        conditions = Conditions(
            now=now,
            at=AT + timedelta(seconds=now),
            policy=POLICY,
            per_second=per_second,
            draw=lambda draw=draw: draw,
        )
        if track.phase is TrackPhase.QUEUED:
            dispatched(track)
        submission = Submission(
            "j",
            JobStatus.parse(status),
            status,
            creation_date=AT if status == "RUNNING" else None,
            progress=progress,
        )
        decision = answered(track, submission, [interest], conditions, demand)
        assert decision.poll_at is not None
        wait = decision.poll_at - now
        assert wait >= 0.0
        # The look may wait in a busy queue, but no longer than the bound: from then on
        # it goes before the routine polls.
        owed = (decision.poll_at if decision.urgent else decision.owed_at) - now
        if JobStatus.parse(status) in {JobStatus.NEVER_EXECUTED, JobStatus.PENDING}:
            stretched = waiting_ceiling(demand.waiting, conditions) * (1 + POLICY.jitter)
            assert wait <= stretched + 1e-9
            assert owed <= stretched + 1e-9
        else:
            assert wait <= POLICY.max_interval * (1 + POLICY.jitter) + 1e-9
            assert owed <= polite_bound(demand.polled, conditions) + 1e-9
        now = decision.poll_at


def test_a_waiting_job_s_look_is_owed_past_its_bound_not_at_it() -> None:
    # 950 tables wait at 1.6 requests a second: the floor's looks alone fill the share.
    # Owed at the bound itself, a look planned there would go before every running
    # table's look due with it, and those would wait minutes. Owed half a jitter later,
    # the two share the queue in due order meanwhile, and the other half is left for
    # the owed looks' own queue: the floor holds within its jitter as sent.
    budget = Conditions(now=0.0, at=AT, policy=POLICY, per_second=2.0)
    demand = Demand(total=1.0, waiting=950)
    track, interest = JobTrack("waiting"), Interest("waiting", RULES, key=1)
    dispatched(track)
    waiting = Submission.never_executed("waiting")
    decision = answered(track, waiting, [interest], budget, demand)
    bound = waiting_ceiling(demand.waiting, budget)
    assert bound == pytest.approx(951 / 1.6)
    assert decision.poll_at == pytest.approx(bound)  # the middle draw: no jitter
    assert not decision.urgent
    assert decision.owed_at == pytest.approx(bound * (1 + POLICY.jitter / 2))

    queue = DueQueue()
    queue.schedule("waiting", bound, urgent=decision.urgent, owed_at=decision.owed_at)
    queue.schedule("running", bound - 10.0)  # a running table's routine look
    assert [queue.pop_due(bound + 1.0), queue.pop_due(bound + 1.0)] == ["running", "waiting"]
