"""The simulator's progress shapes and table start orders: realistic, seeded, and never
moving a start or an end."""

from __future__ import annotations

import itertools
import random

import pytest

from cdm_status import JobStatus
from cdm_status.testing import (
    PROGRESS_SHAPES,
    CDMSimulator,
    FakeClock,
    JobPlan,
    LogNormal,
    ProgressCurve,
    ProgressShape,
    random_plan,
)
from cdm_status.testing._progress import draw_curve
from cdm_status.testing._timeline import Run
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0


def readings(curve: ProgressCurve, points: int = 201) -> list[float]:
    """Reported progress of a 1,000 s run with this curve, sampled evenly while running."""
    run = Run("job", 1, T0, JobPlan(0, 1000), "x", "job", progress_curve=curve)
    states = [run.state_at(T0 + 1000 * i / points) for i in range(points)]
    return [state.progress for state in states if state is not None]


def test_linear_is_the_default_and_follows_time() -> None:
    assert readings(ProgressCurve())[::50] == [0.0, 24.9, 49.8, 74.6, 99.0]
    assert draw_curve("linear", random.Random(1)) == ProgressCurve()


@pytest.mark.parametrize("seed", range(20))
def test_stalling_stands_still_for_a_fifth_to_three_fifths_of_the_run(seed: int) -> None:
    curve = draw_curve("stalling", random.Random(seed))
    values = readings(curve, 1000)
    assert values == sorted(values)  # never goes back
    still = sum(1 for a, b in itertools.pairwise(values) if a == b) / len(values)
    assert 0.15 <= still <= 0.65
    assert values[-1] == 99.0  # and still reaches the end


@pytest.mark.parametrize("seed", range(20))
def test_jumpy_moves_in_a_few_equal_steps(seed: int) -> None:
    curve = draw_curve("jumpy", random.Random(seed))
    values = readings(curve, 1000)
    assert values == sorted(values)
    extractors = len(curve.knots) - 1
    assert 2 <= extractors <= 10
    shares = {round(100 * done / extractors, 1) for done in range(extractors)}
    assert set(values) <= shares | {99.0}  # 99: never 100 before success
    assert len(set(values)) >= 2


def test_convex_starts_slowly_and_catches_up() -> None:
    curves = [draw_curve("convex", random.Random(seed)) for seed in range(20)]
    for curve in curves:
        values = readings(curve)
        assert values == sorted(values)  # never goes back
        assert values[len(values) // 2] < 36.0  # half the time: at most a third of the work
        assert values[-1] >= 95.0
    assert len({curve.knots for curve in curves}) == 20  # each run its own power


def test_zero_stays_at_zero_until_success() -> None:
    curve = draw_curve("zero", random.Random(0))
    assert set(readings(curve)) == {0.0}
    run = Run("job", 1, T0, JobPlan(0, 1000), "x", "job", progress_curve=curve)
    assert run.state_at(T0 + 1000).progress == 100.0  # type: ignore[union-attr]


def test_mixed_draws_every_shape_and_draws_are_seeded() -> None:
    drawn = [draw_curve("mixed", random.Random(seed)).shape for seed in range(100)]
    assert set(drawn) == {"linear", "stalling", "jumpy", "zero", "absent"}
    again = [draw_curve("mixed", random.Random(seed)).shape for seed in range(100)]
    assert drawn == again


@pytest.mark.parametrize(
    "knots",
    [((0.0, 0.0),), ((0.1, 0.0), (1.0, 1.0)), ((0.0, 0.5), (1.0, 0.2)), ((0.0, 0.0), (1.0, 2.0))],
)
def test_impossible_curves_are_refused(knots: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError, match="knots"):
        ProgressCurve(knots)


def test_a_failing_run_dies_short_of_the_end() -> None:
    plans = [random_plan(random.Random(seed), failure_rate=1.0) for seed in range(50)]
    last = []
    for plan in plans:
        run = Run("job", 1, T0, plan, "x", "job")
        before_end = run.state_at(run.ended_at - 0.001)
        assert before_end is not None
        assert before_end.status is JobStatus.RUNNING
        last.append(before_end.progress)
        assert run.state_at(run.ended_at).progress == -1.0  # type: ignore[union-attr]
    assert max(last) <= 95.1
    assert min(last) >= 4.9


async def test_absent_progress_is_not_on_the_wire() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock, progress="absent")
    sim.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=100))
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
    booting = await client.get_status("nightly")
    await clock.advance(50)
    running = await client.get_status("nightly")
    assert running.status is JobStatus.RUNNING
    for seen in (booting, running):
        assert "progress" not in seen.raw
        assert seen.progress is None
    await clock.advance(100)
    assert "progress" not in (await client.get_status("nightly")).raw


async def test_a_plan_can_fix_its_own_curve() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock, progress="absent")
    stuck = ProgressCurve(((0.0, 0.0), (0.5, 0.97), (1.0, 0.97)))
    sim.add_job("commit", plan=JobPlan(boot_seconds=0, run_seconds=100, progress=stuck))
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
    await clock.advance(25)
    assert (await client.get_status("commit")).progress == 48.5
    await clock.advance(50)
    assert (await client.get_status("commit")).progress == 97.0


def ground_truth(sim: CDMSimulator, names: list[str]) -> dict[str, list[tuple[JobStatus, float]]]:
    return {
        name: [(step.status, step.at) for step in sim.transitions(name, upcoming=True)]
        for name in names
    }


def test_the_shape_never_moves_a_start_or_an_end() -> None:
    truths = []
    for shape in PROGRESS_SHAPES:
        sim = CDMSimulator(clock=FakeClock(), seed=5, progress=shape)
        names = sim.add_database_job("db", 40, parallelism=4, failure_rate=0.2)
        names.append(sim.add_job("single", failure_rate=0.5))
        truths.append(ground_truth(sim, names))
    assert all(truth == truths[0] for truth in truths)


async def test_progress_is_seeded() -> None:
    async def progress(seed: int, shape: ProgressShape) -> list[float | None]:
        clock = FakeClock()
        sim = CDMSimulator(clock=clock, seed=seed, progress=shape)
        names = sim.add_database_job("db", 20, parallelism=20, run_seconds=(600, 1200))
        await clock.advance(300)
        client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
        return [(await client.get_status(name)).progress for name in names]

    assert await progress(3, "mixed") == await progress(3, "mixed")
    assert await progress(3, "mixed") != await progress(3, "linear")  # same runs, new curves


def starts(sim: CDMSimulator, names: list[str]) -> list[float]:
    return [
        next(s.at for s in sim.transitions(name, upcoming=True) if s.status is JobStatus.BOOTING)
        for name in names
    ]


def test_tables_start_in_table_order_by_default() -> None:
    sim = CDMSimulator(clock=FakeClock(), seed=9)
    names = sim.add_database_job("db", 50, parallelism=5)
    assert starts(sim, names) == sorted(starts(sim, names))


def test_shuffled_tables_take_the_same_slots_in_another_order() -> None:
    def migrate(order: str, seed: int = 9) -> tuple[CDMSimulator, list[str]]:
        sim = CDMSimulator(clock=FakeClock(), seed=seed)
        return sim, sim.add_database_job("db", 50, parallelism=5, start_order=order)  # type: ignore[arg-type]

    ordered, names = migrate("in_order")
    shuffled, same_names = migrate("shuffled")
    assert names == same_names
    assert starts(shuffled, names) != sorted(starts(shuffled, names))

    def slots(sim: CDMSimulator) -> list[tuple[float, float]]:
        return sorted((starts(sim, [n])[0], sim.finished_at(n) or 0.0) for n in names)

    assert slots(shuffled) == slots(ordered)  # the same timeline, other tables in it
    assert shuffled.finished_at("db") == ordered.finished_at("db")
    assert starts(migrate("shuffled")[0], names) == starts(shuffled, names)  # seeded
    assert starts(migrate("shuffled", seed=10)[0], names) != starts(shuffled, names)


def test_unknown_shapes_and_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="progress must be one of"):
        CDMSimulator(progress="smooth")  # type: ignore[arg-type]
    sim = CDMSimulator(clock=FakeClock())
    with pytest.raises(ValueError, match="start_order must be one of"):
        sim.add_database_job("db", 3, start_order="reversed")  # type: ignore[arg-type]


def test_longest_first_starts_the_biggest_tables_first() -> None:
    sim = CDMSimulator(clock=FakeClock(), seed=9)
    names = sim.add_database_job(
        "db", 50, parallelism=5, start_order="longest_first", failure_rate=0.2
    )

    def planned(name: str) -> float:
        run = sim._jobs.record(name).runs[-1]  # as planned: a failing run was meant longer
        return run.plan.progress_seconds or run.plan.run_seconds

    biggest_first = sorted(names, key=planned, reverse=True)
    began = starts(sim, biggest_first)
    assert began == sorted(began)  # the bigger a table, the sooner it took a slot
    assert began != starts(sim, names)  # which is not table order


def test_lognormal_run_times_spread_around_their_median() -> None:
    rng = random.Random(4)
    for sigma in (0.3, 1.0, 2.0):
        spread = LogNormal(900.0, sigma)
        runs = sorted(random_plan(rng, run_seconds=spread).run_seconds for _ in range(4000))
        assert 0.9 * 900 <= runs[len(runs) // 2] <= 1.1 * 900
        within = sum(900 / 2.718**sigma <= run <= 900 * 2.718**sigma for run in runs)
        assert 0.64 <= within / len(runs) <= 0.72  # one sigma either side: 68%
    with pytest.raises(ValueError, match="sigma"):
        LogNormal(900.0, -1.0)


def test_database_jobs_boot_within_the_range_given() -> None:
    sim = CDMSimulator(clock=FakeClock(), seed=9)
    names = sim.add_database_job("db", 100, parallelism=100, boot_seconds=(2.0, 20.0))
    boots = [sim._jobs.record(name).runs[-1].plan.boot_seconds for name in names]
    assert 2.0 <= min(boots) < 4.0
    assert 18.0 < max(boots) <= 20.0
