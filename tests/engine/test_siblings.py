"""Which waiting subjobs to look at sooner when a sibling ends: pure, table-tested."""

from __future__ import annotations

import math
import random

import pytest

from cdm_status._siblings import SiblingPolicy, waiting_bound

POLICY = SiblingPolicy(promote=2, slack=2, soon=3.0)
JOBS = [f"db_t{index:02d}" for index in range(1, 11)]


def named(*indexes: int) -> set[str]:
    return {JOBS[index - 1] for index in indexes}


@pytest.mark.parametrize(
    ("waiting", "looked_at", "expected"),
    [
        # Nothing started yet: the first tables in order.
        (named(*range(1, 11)), {}, ("db_t01", "db_t02")),
        # Started in order (t01-t04): the next ones in order.
        (named(*range(5, 11)), {}, ("db_t05", "db_t06")),
        # In order but a start not seen yet (t05 waits while t06 runs): t05 first, it
        # has almost surely started already.
        (named(5, *range(7, 11)), {}, ("db_t05", "db_t07")),
        # Shuffled: t09 and t10 ran while most before them wait. Every waiting one is as
        # likely: those looked at longest ago, never looked at first.
        (
            named(1, 2, 4, 5, 6, 8),
            {"db_t01": 50.0, "db_t02": 10.0, "db_t04": 30.0, "db_t05": 20.0, "db_t08": 5.0},
            ("db_t06", "db_t08"),
        ),
        # Ties in when they were looked at keep table order.
        (named(1, 2, 4, 5, 6, 8), dict.fromkeys(JOBS, 7.0), ("db_t01", "db_t02")),
        # One waiting: only it. None waiting: nothing.
        (named(10), {}, ("db_t10",)),
        (set(), {}, ()),
    ],
)
def test_likely_next(
    waiting: set[str], looked_at: dict[str, float], expected: tuple[str, ...]
) -> None:
    assert POLICY.likely_next(JOBS, waiting, looked_at) == expected


@pytest.mark.parametrize(
    ("waiting", "in_order"),
    [
        (named(*range(1, 11)), True),
        (named(*range(4, 11)), True),
        (named(2, 3, *range(6, 11)), True),  # two starts not seen yet: within slack
        (named(2, 3, 4, *range(6, 11)), False),  # three: beyond it
        (named(1, 3, 5, 7, 9), False),
    ],
)
def test_in_order_detection(waiting: set[str], in_order: bool) -> None:
    assert POLICY.in_order(JOBS, waiting) is in_order


def test_promoting_nobody_is_allowed() -> None:
    assert SiblingPolicy(promote=0).likely_next(JOBS, set(JOBS), {}) == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"promote": -1}, "promote"), ({"slack": -1}, "slack"), ({"soon": math.nan}, "soon")],
)
def test_impossible_policies_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SiblingPolicy(**kwargs)  # type: ignore[arg-type]


def first_seen_starts(order: list[int], parallel: int, policy: SiblingPolicy) -> list[int]:
    """Looks, one end after another, until each start is seen: a migration of
    ``len(order)`` tables, ``parallel`` at once, starting in ``order``; each end promotes
    ``likely_next`` and looks at those only (the rest of the budget is not modelled).
    Returns, per start, how many ends passed before a promotion found it."""
    jobs = [f"t{index:03d}" for index in range(len(order))]
    started = set(order[:parallel])
    waiting = {jobs[i] for i in order[parallel:]}
    looked: dict[str, float] = {}
    missed: dict[int, int] = {}
    for end, table in enumerate(order[parallel:]):
        started.add(table)  # a slot freed: the next table in ``order`` took it
        for name in policy.likely_next(jobs, waiting, looked):
            looked[name] = float(end)
            index = jobs.index(name)
            if index in started:
                waiting.discard(name)
        for index in started:
            if jobs[index] in waiting:
                missed[index] = missed.get(index, 0) + 1
    return [missed.get(index, 0) for index in order[parallel:]]


def test_in_order_starts_are_found_by_the_first_promotion() -> None:
    order = list(range(60))
    misses = first_seen_starts(order, parallel=5, policy=SiblingPolicy())
    assert max(misses) == 0  # every start seen at the end that caused it


def test_shuffled_starts_are_found_at_least_as_fast_as_looking_at_random() -> None:
    order = list(range(60))
    random.Random(3).shuffle(order)
    misses = first_seen_starts(order, parallel=5, policy=SiblingPolicy())
    # Promotions cycle through the waiting ones (longest unlooked first): no start waits
    # for more ends than it takes to look at every waiting table once.
    assert max(misses) <= 55 // SiblingPolicy().promote + 1


def test_waiting_bound() -> None:
    assert waiting_bound(950, per_second=1.0, floor=300.0) == 950.0
    assert waiting_bound(100, per_second=1.0, floor=300.0) == 300.0
    with pytest.raises(ValueError, match="per_second"):
        waiting_bound(10, per_second=0.0, floor=1.0)
