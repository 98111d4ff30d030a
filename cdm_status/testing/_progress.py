"""How a simulated run reports its progress: the shapes real CDM clusters show.

CDM's ``progress`` (0-100) is not a clock. Depending on the version and the connector it
moves steadily, sits still for long stretches (a large partition, the final commit),
jumps in steps (one extractor of several finishing), stays at 0 until the job ends, or is
not sent at all. A client that predicts ends from it must cope with every one of these, so
the simulator can play each:

==========  ==========================================================================
shape       what a RUNNING submission shows
==========  ==========================================================================
linear      progress proportional to the running time (the default)
convex      a slow start: work grows as the running time to a power of 1.5-3 (a
            table whose first rows are the slowest to read, an index built first)
stalling    steady progress broken by 1-3 stalls that together take 20-60% of the run;
            half the runs stall last at 90-99%, as a final commit does
jumpy       steps: 2-10 extractors finish at random moments, each adds its share
zero        0 from start to end
absent      no ``progress`` field at all (versions that do not send it)
mixed       each run draws one of linear, stalling, jumpy, zero and absent
==========  ==========================================================================

A :class:`ProgressCurve` maps the fraction of running time elapsed to the fraction of work
reported. Curves are drawn from the simulator's own generator, apart from the one that
draws durations, so changing the shape never changes when jobs start or end.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["LINEAR", "PROGRESS_SHAPES", "ProgressCurve", "ProgressShape", "draw_curve"]

ProgressShape = Literal["linear", "convex", "stalling", "jumpy", "zero", "absent", "mixed"]
"""How a simulated run reports its progress: ``linear`` (proportional to running time),
``convex`` (a slow start), ``stalling`` (long stretches standing still, often at
90-99%), ``jumpy`` (steps, one per extractor), ``zero`` (0 until the end), ``absent`` (no
``progress`` field) or ``mixed`` (each run draws one of the others but ``convex``)."""
PROGRESS_SHAPES: tuple[ProgressShape, ...] = get_args(ProgressShape)
"""Every ``ProgressShape``: the values ``CDMSimulator(progress=...)`` takes."""
_DRAWN: tuple[ProgressShape, ...] = ("linear", "stalling", "jumpy", "zero", "absent")


@dataclass(frozen=True, slots=True)
class ProgressCurve:
    """Work reported against running time, both as fractions of 1.

    ``knots`` are ``(time, work)`` points from ``(0, w0)`` to ``(1, w1)``, time increasing
    and work never decreasing; between two knots work follows a straight line, or with
    ``steps`` keeps the earlier knot's value. ``reported=False``: the API sends no
    progress field.

    Raises:
        ValueError: Knots that do not run from time 0 to time 1, go back in time, or
            lose work.
    """

    knots: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))
    """``(time, work)`` points, both fractions of 1, from time 0 to time 1."""
    steps: bool = False
    """Between two knots, keep the earlier knot's work instead of a straight line."""
    reported: bool = True
    """False: the API sends no ``progress`` field."""
    shape: ProgressShape = "linear"
    """The name of the shape the curve was drawn as."""

    def __post_init__(self) -> None:
        if len(self.knots) < 2 or self.knots[0][0] != 0.0 or self.knots[-1][0] != 1.0:
            raise ValueError("knots must run from time 0 to time 1")
        for (t0, w0), (t1, w1) in itertools.pairwise(self.knots):
            if not (t0 <= t1 and 0.0 <= w0 <= w1 <= 1.0):
                raise ValueError("knots must go forward in time and never lose work")

    def work(self, fraction: float) -> float:
        """Work reported (0..1) once ``fraction`` (0..1) of the running time has passed.

        Args:
            fraction: The share of the running time elapsed (clamped to 0..1).
        """
        fraction = min(1.0, max(0.0, fraction))
        knots = self.knots
        for (t0, w0), (t1, w1) in itertools.pairwise(knots):
            if fraction < t1:
                if self.steps or t1 == t0:
                    return w0
                return w0 + (w1 - w0) * (fraction - t0) / (t1 - t0)
        return knots[-1][1]


LINEAR = ProgressCurve()


def draw_curve(shape: ProgressShape, rng: random.Random) -> ProgressCurve:
    """A curve of ``shape``, drawn from ``rng`` (``linear`` draws nothing)."""
    if shape == "mixed":
        shape = _DRAWN[rng.randrange(len(_DRAWN))]
    if shape == "linear":
        return LINEAR
    if shape == "zero":
        return ProgressCurve(((0.0, 0.0), (1.0, 0.0)), shape="zero")
    if shape == "absent":
        return ProgressCurve(reported=False, shape="absent")
    if shape == "jumpy":
        return _jumpy(rng)
    if shape == "convex":
        return _convex(rng)
    if shape == "stalling":
        return _stalling(rng)
    raise ValueError(f"progress shape must be one of {', '.join(PROGRESS_SHAPES)}")


def _convex(rng: random.Random) -> ProgressCurve:
    power = rng.uniform(1.5, 3.0)
    knots = tuple((step / 20, (step / 20) ** power) for step in range(21))
    return ProgressCurve(knots, shape="convex")


def _jumpy(rng: random.Random) -> ProgressCurve:
    # Extractors share the work evenly but finish when they finish: each one's end is
    # a step of 1/n at a random moment (the last one's end is the run's end).
    n = rng.randint(2, 10)
    moments = sorted(rng.uniform(0.05, 0.95) for _ in range(n - 1))
    knots = [(0.0, 0.0), *((t, (i + 1) / n) for i, t in enumerate(moments)), (1.0, 1.0)]
    return ProgressCurve(tuple(knots), steps=True, shape="jumpy")


def _stalling(rng: random.Random) -> ProgressCurve:
    count = rng.randint(1, 3)
    stalled = rng.uniform(0.2, 0.6)  # share of the running time spent standing still
    shares = [rng.random() + 0.1 for _ in range(count)]
    durations = [stalled * share / sum(shares) for share in shares]
    points = sorted(rng.uniform(0.05, 0.9) for _ in range(count))
    if rng.random() < 0.5:
        points[-1] = rng.uniform(0.9, 0.99)  # the final commit: stuck just short of done
    moving = 1.0 - stalled
    knots: list[tuple[float, float]] = [(0.0, 0.0)]
    paused = 0.0
    for work, pause in zip(points, durations, strict=True):
        arrive = moving * work + paused
        paused += pause
        knots += [(arrive, work), (moving * work + paused, work)]
    knots.append((1.0, 1.0))
    return ProgressCurve(tuple(knots), shape="stalling")
