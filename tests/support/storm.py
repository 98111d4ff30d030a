"""The storm every chaos test runs in, and the checks against the simulator's ground truth.

A whole-database migration whose requests meet, at once: 30% 503 (half of them with
``Retry-After``), 5% 429 ``APIG.0308``, 1% truncated or non-JSON bodies, 1% dropped
connections, slow answers, and one 10-second outage in which every request fails. Job plans
come from the simulator's seed alone, so the same migration runs with and without faults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdm_status import Clock, Event, JobDone, JobStatus, OutcomeKind, PollFailed, StatusChanged
from cdm_status.testing import CDMSimulator, Faults, RateLimits

__all__ = [
    "FAULT_KINDS",
    "OUTAGE_AFTER",
    "OUTAGE_SECONDS",
    "Storm",
    "check_against_truth",
    "migration",
    "poll_failures",
    "storm_faults",
]

OUTAGE_AFTER = 240.0
"""Seconds into the migration at which the outage starts."""
OUTAGE_SECONDS = 10.0

FAULT_KINDS = frozenset({"503", "503-retry-after", "429", "truncate", "not-json", "drop", "slow"})


def storm_faults(*, drop: float = 0.01, latency: float = 3.0) -> Faults:
    return Faults(
        unavailable=0.15,
        unavailable_retry_after=0.15,
        throttled=0.05,
        truncate=0.005,
        not_json=0.005,
        drop=drop,
        slow=0.05,
        latency=latency,
        retry_after=2.0,
    )


def migration(
    clock: Clock,
    tables: int,
    *,
    faulty: bool,
    seed: int = 7,
    parallelism: int = 100,
    run_seconds: tuple[float, float] = (60.0, 300.0),
    faults: Faults | None = None,
    **options: Any,
) -> tuple[CDMSimulator, list[str]]:
    """A simulated cluster running one whole-database job of ``tables`` subjobs (5% of
    them fail), under CDM's rate limits; with ``faulty``, in the storm."""
    sim = CDMSimulator(
        clock=clock,
        seed=seed,
        limits=RateLimits.cdm_defaults(),
        faults=(faults or storm_faults()) if faulty else Faults(),
        **options,
    )
    names = sim.add_database_job(
        "warehouse", tables, parallelism=parallelism, failure_rate=0.05, run_seconds=run_seconds
    )
    if faulty:
        sim.faults.outage(clock.time() + OUTAGE_AFTER, OUTAGE_SECONDS)
    return sim, names


@dataclass(frozen=True)
class Storm:
    """What a storm did, from the server's side."""

    requests: int
    faults: dict[str, int]
    during_outage: int

    @classmethod
    def of(cls, sim: CDMSimulator) -> Storm:
        outages = sim.faults.outages
        during = sum(
            1
            for times in sim.stats.times.values()
            for at in times
            if any(window.covers(at) for window in outages)
        )
        return cls(sim.stats.total, dict(sim.stats.faults), during)


def check_against_truth(sim: CDMSimulator, names: Sequence[str], events: Sequence[Event]) -> None:
    """Everything a watch reported agrees with what the simulator knows happened.

    * exactly one ``JobDone`` per job, and nothing for a job nobody watched;
    * each outcome is the job's real end: SUCCEEDED or FAILED as planned, never an error,
      a timeout or a not-found, so no FAILED was a poll failure in disguise;
    * every ``StatusChanged`` reports a status the job really entered, no later than when
      it was reported, in the order the job went through them, chained by ``previous``.
    """
    done: dict[str, JobDone] = {}
    changes: dict[str, list[StatusChanged]] = {name: [] for name in names}
    for event in events:
        assert event.job_name in changes, f"an event for a job nobody watched: {event}"
        if isinstance(event, JobDone):
            assert event.job_name not in done, f"two JobDone for {event.job_name}"
            done[event.job_name] = event
        else:
            assert event.job_name not in done, f"an event after JobDone: {event}"
            if isinstance(event, StatusChanged):
                changes[event.job_name].append(event)
    assert set(done) == set(names), f"{len(set(names) - set(done))} jobs never ended"
    for name in names:
        final = sim.final_status(name)
        assert final is not None
        outcome = done[name].outcome
        expected = OutcomeKind.SUCCEEDED if final.is_success else OutcomeKind.FAILED
        assert outcome.kind is expected, (name, outcome, final)
        assert outcome.error is None, (name, outcome.error)
        assert outcome.submission is not None
        assert outcome.submission.status is final, (name, outcome.submission.status, final)
        if final is JobStatus.FAILED:
            assert outcome.submission.error_summary, name  # the real failure's details
        _check_changes(sim, name, changes[name])


def _check_changes(sim: CDMSimulator, name: str, seen: list[StatusChanged]) -> None:
    truth = sim.transitions(name)
    assert seen, f"{name}: no status was reported"
    assert seen[0].previous is None
    position = 0  # statuses must be reported in the order the job went through them
    for index, change in enumerate(seen):
        if index:
            assert change.previous is seen[index - 1].current, (name, change)
        assert change.previous is not change.current, (name, change)
        reported_at = change.at.timestamp() + 1e-3
        entered = [
            i
            for i, step in enumerate(truth)
            if step.status is change.current and step.at <= reported_at and i >= position
        ]
        if not entered and change.current is JobStatus.NEVER_EXECUTED:
            # A job that has not started yet (the list shows a waiting subjob as NEW).
            started = next(
                (s.at for s in truth if s.status is not JobStatus.NEVER_EXECUTED), math.inf
            )
            assert index == 0, (name, change)
            assert change.at.timestamp() <= started + 1e-3, (name, change, started)
            continue
        assert entered, (
            f"{name}: reported {change.current} at {change.at}, "
            f"but the job went {[(s.status.value, s.at) for s in truth]}"
        )
        position = entered[0]
    assert seen[-1].current is truth[-1].status


def poll_failures(events: Sequence[Event]) -> int:
    return sum(isinstance(event, PollFailed) for event in events)
