"""The end estimator is pure: readings in, a predicted end and the next look out."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdm_status import JobStatus, PollPolicy, Submission
from cdm_status._estimate import (
    EstimatePolicy,
    ProgressTrack,
    observe,
    run_started,
    starts_exactly,
)
from cdm_status.testing import (
    PROGRESS_SHAPES,
    CDMSimulator,
    FakeClock,
    JobPlan,
    ProgressShape,
    random_plan,
)
from cdm_status.testing._progress import draw_curve
from cdm_status.testing._timeline import Run

POLICY = EstimatePolicy(min_gap=2.0, max_wait=120.0, soon=5.0, refine=0.5, agree=0.1)


def track_of(
    *readings: tuple[float, float | None], started: float = 0.0, exact_start: bool = False
) -> ProgressTrack:
    track = None
    for at, progress in readings:
        track = observe(track, at=at, progress=progress, started=started, exact_start=exact_start)
    assert track is not None
    return track


# ---------------------------------------------------------------------------- readings


def test_a_first_look_starts_the_track() -> None:
    track = track_of((100.0, 25.0))
    assert (track.first_at, track.first_progress) == (100.0, 25.0)
    assert (track.last_at, track.last_progress, track.looked_at) == (100.0, 25.0, 100.0)


@pytest.mark.parametrize("unusable", [None, -1.0, math.nan, math.inf, -math.inf])
def test_missing_or_failed_progress_counts_the_look_but_not_the_reading(
    unusable: float | None,
) -> None:
    track = track_of((100.0, 25.0), (150.0, unusable))
    assert (track.last_at, track.last_progress, track.looked_at) == (100.0, 25.0, 150.0)
    assert track_of((100.0, unusable)).predicted_end() is None


def test_progress_never_goes_back() -> None:
    track = track_of((100.0, 40.0), (150.0, 30.0))
    assert (track.last_at, track.last_progress) == (150.0, 40.0)  # a stall at 40
    assert track.predicted_end() == pytest.approx(150 + 150 * 60 / 40)


def test_an_answer_older_than_the_last_one_read_changes_nothing() -> None:
    track = track_of((100.0, 40.0), (150.0, 50.0))
    assert observe(track, at=120.0, progress=90.0, started=0.0) is track


def test_another_start_is_another_run() -> None:
    track = observe(track_of((100.0, 90.0)), at=400.0, progress=5.0, started=300.0)
    assert track == ProgressTrack(
        started=300.0, first_at=400.0, first_progress=5.0, last_at=400.0, last_progress=5.0,
        looked_at=400.0, anchor_at=400.0, anchor_progress=5.0,
    )  # fmt: skip


def test_a_start_that_wobbles_by_less_than_a_second_is_the_same_run() -> None:
    # Starts converted from the API's dates to the monotonic clock differ a little at
    # every look; only another submission moves the start by seconds.
    track = track_of((100.0, 20.0), started=10.0)
    same = observe(track, at=200.0, progress=40.0, started=10.4)
    assert (same.started, same.first_at, same.last_progress) == (10.0, 100.0, 40.0)
    assert observe(track, at=200.0, progress=40.0, started=12.0).first_at == 200.0


def test_readings_above_100_are_read_as_100() -> None:
    assert track_of((100.0, 250.0)).last_progress == 100.0


# ---------------------------------------------------------------------------- starts

EPOCH = 1_800_000_000.0


@pytest.mark.parametrize(
    ("raw", "created", "started"),
    [
        # execute-date (the start of RUNNING) first, creation-date (booting too) else.
        ({"execute-date": (EPOCH - 90) * 1000}, EPOCH - 120, 910.0),
        ({}, EPOCH - 120, 880.0),
        ({"execute-date": "soon"}, EPOCH - 120, 880.0),
        ({"execute-date": True}, EPOCH - 120, 880.0),
        ({"execute-date": -1}, EPOCH - 120, 880.0),
        ({}, None, None),
    ],
)
def test_run_started_on_the_monotonic_clock(
    raw: dict[str, object], created: float | None, started: float | None
) -> None:
    submission = Submission(
        job_name="job",
        status=JobStatus.RUNNING,
        raw_status="RUNNING",
        creation_date=None if created is None else datetime.fromtimestamp(created, timezone.utc),
        raw=raw,
    )
    assert run_started(submission, monotonic=1000.0, epoch=EPOCH) == started


@pytest.mark.anyio
async def test_run_started_from_the_simulator_is_when_the_job_began_running() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    sim.add_job("nightly", plan=JobPlan(boot_seconds=30, run_seconds=300))
    began = clock.monotonic()
    await clock.advance(100)
    submission = await sim.client().get_status("nightly")
    started = run_started(submission, monotonic=clock.monotonic(), epoch=clock.time())
    assert started == pytest.approx(began + 30, abs=0.01)


# ---------------------------------------------------------------------------- predictions


@pytest.mark.parametrize(
    ("readings", "started", "end"),
    [
        # No reading above 0 yet: progress that stays at 0, or is not sent, says nothing.
        ([], 0.0, None),
        ([(100.0, 0.0), (200.0, 0.0)], 0.0, None),
        ([(100.0, None)], 0.0, None),
        # One reading: the pace since the start.
        ([(100.0, 25.0)], 0.0, 400.0),
        # Two readings: the pace between them; the start (20 s of booting) no longer
        # delays the prediction (the true end of this 400 s run is 420).
        ([(120.0, 25.0), (220.0, 50.0)], 0.0, 420.0),
        # A stall: the same reading later lowers the pace; the end moves later.
        ([(100.0, 50.0)], 0.0, 200.0),
        ([(100.0, 50.0), (200.0, 50.0)], 0.0, 400.0),
        # A jump: the pace between readings wins over the slower pace since the start.
        ([(100.0, 10.0), (150.0, 60.0)], 0.0, 190.0),
        # Moving again after a long stall: the latest pace (10 -> 20 in 10 s) wins.
        ([(100.0, 10.0), (500.0, 10.0), (510.0, 20.0)], 0.0, 590.0),
        # 100 while still running: the end is now.
        ([(100.0, 40.0), (300.0, 100.0)], 0.0, 300.0),
        # A start after the reading (clocks disagree): the start is not trusted.
        ([(100.0, 50.0)], 500.0, None),
        ([(100.0, 20.0), (200.0, 40.0)], 500.0, 500.0),
    ],
)
def test_predicted_end(
    readings: list[tuple[float, float | None]], started: float, end: float | None
) -> None:
    track = ProgressTrack(started=started)
    for at, progress in readings:
        track = observe(track, at=at, progress=progress, started=started)
    assert track.predicted_end() == (None if end is None else pytest.approx(end))


# ---------------------------------------------------------------------------- next look


@pytest.mark.parametrize(
    ("readings", "fallback", "wait"),
    [
        # No prediction: the caller's own running interval, within the bounds.
        ([(100.0, 0.0)], 15.0, 15.0),
        ([(100.0, None)], 15.0, 15.0),
        ([(100.0, None)], 500.0, 120.0),
        ([(100.0, None)], 0.5, 2.0),
        # One reading (end 400 at the pace since the start): half way, at most the
        # fallback, to measure the pace between two readings.
        ([(100.0, 25.0)], 500.0, 120.0),
        ([(100.0, 25.0)], 60.0, 60.0),
        ([(300.0, 75.0)], 500.0, 50.0),
        # Two readings that disagree with the prediction before them: at most the
        # fallback (end 400 from here).
        ([(100.0, 25.0), (200.0, 60.0)], 40.0, 40.0),
        # Two readings that confirm the prediction before them (the pace held): the
        # predicted end itself, beyond the fallback, within max_wait.
        ([(100.0, 25.0), (110.0, 27.5)], 20.0, 120.0),
        ([(100.0, 50.0), (150.0, 75.0), (175.0, 87.5)], 20.0, 25.0),
        # A stall confirms nothing: the end moved later, look again within the fallback.
        ([(100.0, 50.0), (150.0, 75.0), (160.0, 75.0)], 20.0, 20.0),
    ],
)
def test_next_look(
    readings: list[tuple[float, float | None]], fallback: float, wait: float
) -> None:
    track = track_of(*readings)
    now = readings[-1][0]
    assert POLICY.next_look(track, now, fallback) == pytest.approx(now + wait)


def test_once_the_end_is_due_look_soon_then_less_often() -> None:
    track = track_of((100.0, 50.0), (150.0, 75.0), (175.0, 87.5))  # end due at 200
    assert POLICY.next_look(track, 175.0, 60.0) == 200.0
    waits = []
    now = 200.0
    for _ in range(7):  # stuck just short of the end, as a final commit is
        track = observe(track, at=now, progress=99.0, started=0.0)
        wait = POLICY.next_look(track, now, 60.0) - now
        waits.append(round(wait, 1))
        now += wait
    assert track.late == 7
    # The reading that moved to 99 says the end is 2 s away: look then. Stuck at 99
    # after that: 5 s doubling with each look (the first wait of 5 s was spent), up to
    # the caller's running interval.
    assert waits == [2.0, 10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    stuck = track_of((100.0, 50.0), (150.0, 75.0), (175.0, 87.5))
    waits = []
    now = 200.0
    for _ in range(6):
        stuck = observe(stuck, at=now, progress=87.5, started=0.0)
        wait = POLICY.next_look(stuck, now, 60.0) - now
        waits.append(wait)
        now += wait
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_missing_progress_after_the_end_was_due_backs_off_too() -> None:
    track = track_of((100.0, 50.0), (150.0, 75.0))  # end due at 200
    waits = []
    now = 200.0
    for _ in range(4):
        track = observe(track, at=now, progress=None, started=0.0)
        wait = POLICY.next_look(track, now, 30.0) - now
        waits.append(wait)
        now += wait
    assert waits == [5.0, 10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_gap": 0.0}, "min_gap"),
        ({"max_wait": math.inf}, "max_wait"),
        ({"soon": -1.0}, "soon"),
        ({"min_gap": 10.0, "max_wait": 5.0}, "at least min_gap"),
        ({"refine": 0.0}, "refine"),
        ({"agree": -0.1}, "agree"),
    ],
)
def test_impossible_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EstimatePolicy(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 500.0),
            st.one_of(st.none(), st.floats(-1.0, 120.0, allow_nan=False)),
        ),
        min_size=1,
        max_size=12,
    ),
    st.floats(-100.0, 600.0),
    st.floats(0.1, 1000.0),
)
def test_every_next_look_is_within_the_bounds(
    steps: list[tuple[float, float | None]], started: float, fallback: float
) -> None:
    track = None
    now = 0.0
    for gap, progress in steps:
        now += gap
        track = observe(track, at=now, progress=progress, started=started)
        at = POLICY.next_look(track, now, fallback)
        assert now + POLICY.min_gap <= at <= now + POLICY.max_wait


# ---------------------------------------------------------------------------- replays


def replay(shape: ProgressShape, runs: int = 300, seed: int = 7) -> tuple[list[float], float]:
    """Follow simulated runs with the estimator alone (no budget): the lags at which
    successful ends are seen, and the mean looks per run from the first one running."""
    rng, curves = random.Random(seed), random.Random(f"{seed}:curves")
    schedule = PollPolicy()
    lags, looks = [], []
    for _ in range(runs):
        plan = random_plan(rng, run_seconds=(120.0, 1800.0))
        run = Run("job", 1, 0.0, plan, "x", "job", progress_curve=draw_curve(shape, curves))
        now, track, count = run.running_at + rng.uniform(0.0, 30.0), None, 0
        while (state := run.state_at(now)) is not None and state.status is JobStatus.RUNNING:
            count += 1
            reading = state.progress if run.progress_curve.reported else None
            track = observe(track, at=now, progress=reading, started=0.0)
            fallback = schedule.interval(JobStatus.RUNNING, now - run.running_at)
            now = POLICY.next_look(track, now, fallback)
        lags.append(now - run.end())
        looks.append(count + 1)
    return lags, statistics.fmean(looks)


def p95(values: list[float]) -> float:
    return sorted(values)[round(0.95 * (len(values) - 1))]


def test_steady_progress_is_seen_ending_within_seconds_in_a_few_looks() -> None:
    lags, looks = replay("linear")
    without, looks_without = replay("zero")  # no information: the running interval only
    assert p95(lags) <= 6.0
    assert p95(without) >= 45.0
    assert looks <= 10 <= looks_without / 2


@pytest.mark.parametrize("shape", PROGRESS_SHAPES)
def test_no_shape_is_seen_later_than_the_running_interval_alone(shape: ProgressShape) -> None:
    lags, looks = replay(shape)
    without, looks_without = replay("zero")
    assert p95(lags) <= p95(without) + 2.0
    assert looks <= looks_without + 2.0
    assert max(lags) <= POLICY.max_wait


# ---------------------------------------------------------------------------- growing pace


def test_a_growing_pace_is_fitted_from_an_exact_start() -> None:
    # Work done as (t / 400)^2 from a start the answer dates exactly (execute-date): the
    # linear paces say 1,000 s, 500 s; the power fitted through the first reading of
    # at least 1% and the latest one says 400 s, the true end.
    readings = [(40.0, 1.0), (200.0, 25.0)]
    exact = track_of(*readings, exact_start=True)
    assert exact.predicted_end() == pytest.approx(400.0)
    # From a creation date, booting would read as growth: the linear paces only.
    assert track_of(*readings).predicted_end() == pytest.approx(200.0 + 160.0 * 75.0 / 24.0)


def test_a_steady_or_slowing_pace_is_not_read_as_growth() -> None:
    steady = track_of((100.0, 10.0), (500.0, 50.0), exact_start=True)
    assert steady.predicted_end() == pytest.approx(1000.0)
    slowing = track_of((100.0, 20.0), (500.0, 50.0), exact_start=True)
    assert slowing.predicted_end() == pytest.approx(
        track_of((100.0, 20.0), (500.0, 50.0)).predicted_end()
    )


def test_the_fitted_growth_is_bounded() -> None:
    # 1% -> 50% while the running time doubles would be a power of 5.6 (an end at 226 s):
    # read as MAX_POWER (4), the end at 200 x 2^(1/4).
    track = track_of((100.0, 1.0), (200.0, 50.0), exact_start=True)
    assert track.predicted_end() == pytest.approx(200.0 * 2.0 ** (1 / 4))


@pytest.mark.parametrize(
    ("raw", "exact"),
    [
        ({"execute-date": (EPOCH - 90) * 1000}, True),
        ({}, False),
        ({"execute-date": "soon"}, False),
        ({"execute-date": True}, False),
        ({"execute-date": 0}, False),
    ],
)
def test_a_start_is_exact_when_the_answer_dates_the_running(
    raw: dict[str, object], exact: bool
) -> None:
    submission = Submission("job", JobStatus.RUNNING, "RUNNING", raw=raw)
    assert starts_exactly(submission) is exact


CLOSING = EstimatePolicy(min_gap=1.0, max_wait=3600.0, soon=1.0, doubling=True, confirm_share=0.9)


def test_until_confirmed_the_looks_close_in_on_the_end() -> None:
    # A slow start: 0.5% at 20 s says the end is at 4,000 s at that pace; the run is
    # 400 s long. Without doubling the next look is half way (2,000 s); with it, no later
    # than the run has run so far: 40 s, 80 s... the pace is measured as it grows.
    track = track_of((20.0, 0.5), exact_start=True)
    assert POLICY.next_look(track, 20.0, 3600.0) == pytest.approx(20.0 + 120.0)
    assert CLOSING.next_look(track, 20.0, 3600.0) == pytest.approx(40.0)
    looks, now = [], 20.0
    while now < 400.0 and len(looks) < 30:
        now = CLOSING.next_look(track, now, 3600.0)
        looks.append(now)
        track = observe(track, at=now, progress=min(99.0, 100 * (now / 400.0) ** 2),
                        started=0.0, exact_start=True)  # fmt: skip
    assert looks[:3] == pytest.approx([40.0, 80.0, 160.0])
    assert 400.0 <= looks[-1] <= 402.0  # seen ending within 2 s, in a dozen looks
    assert len(looks) <= 12


def test_a_prediction_is_confirmed_once_the_readings_cover_most_of_the_run() -> None:
    # Two readings 1% apart agree with each other, but say little: not confirmed yet.
    early = track_of((10.0, 1.0), (20.0, 2.0), (30.0, 3.0))
    assert POLICY.confirmed(early)
    assert not CLOSING.confirmed(early)
    late = track_of((10.0, 1.0), (20.0, 2.0), (950.0, 95.0))
    assert CLOSING.confirmed(late)
    # Covered is a share of what was left at the first reading (first seen at 50%).
    halfway = track_of((500.0, 50.0), (900.0, 90.0), (960.0, 96.0))
    assert CLOSING.confirmed(halfway)
    assert not CLOSING.confirmed(track_of((500.0, 50.0), (800.0, 80.0), (900.0, 90.0)))


STRAIGHT = EstimatePolicy(min_gap=1.0, max_wait=3600.0, soon=1.0)
"""The busy between-sweeps policy without the anchor: straight to the predicted end."""
ANCHORED = replace(STRAIGHT, anchored=True)


def test_below_the_anchor_the_looks_close_in_however_the_paces_agree() -> None:
    # A run of 400 s whose work grows as (t / 400)^3: 0.2% at 64 s, 0.4% at 80 s. Every
    # pace puts the end hours away; straight there (the most a look waits), the end at
    # 400 s is missed. Anchored, each look comes no later than the run has run so far
    # until a pace is measured from a reading over 1%: 160 s (6.4%), 320 s (51.2%),
    # whose growing pace says 400 s.
    track = track_of((64.0, 0.2), (80.0, 0.4), exact_start=True)
    assert STRAIGHT.next_look(track, 80.0, 3600.0) == pytest.approx(80.0 + 3600.0)
    assert ANCHORED.next_look(track, 80.0, 3600.0) == pytest.approx(160.0)
    track = observe(track, at=160.0, progress=6.4, started=0.0, exact_start=True)
    assert STRAIGHT.next_look(track, 160.0, 3600.0) > 1000.0
    assert ANCHORED.next_look(track, 160.0, 3600.0) == pytest.approx(320.0)
    track = observe(track, at=320.0, progress=51.2, started=0.0, exact_start=True)
    assert track.predicted_end() == pytest.approx(400.0)
    assert ANCHORED.next_look(track, 320.0, 3600.0) == pytest.approx(400.0)
    assert ANCHORED.next_look(track, 320.0, 3600.0) == STRAIGHT.next_look(track, 320.0, 3600.0)


def test_a_steady_run_below_the_anchor_is_held_back_only_until_its_paces_agree() -> None:
    # A run of 1,000 s read at 0.5% (5 s) and 1.1% (10 s): the rounding to 0.1 puts the
    # two predictions 17% of the time left apart, so the next look is no later than
    # 10 s on; at 2.2% (20 s) they agree, and the look goes to the end, as without the
    # anchor.
    track = track_of((5.0, 0.5), (10.0, 1.1), exact_start=True)
    assert ANCHORED.next_look(track, 10.0, 3600.0) == pytest.approx(20.0)
    track = observe(track, at=20.0, progress=2.2, started=0.0, exact_start=True)
    assert ANCHORED.confirmed(track)
    assert ANCHORED.next_look(track, 20.0, 3600.0) == STRAIGHT.next_look(track, 20.0, 3600.0)
