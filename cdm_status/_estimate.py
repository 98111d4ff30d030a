"""When a running job will end, from its progress over time. Pure: numbers in, numbers out.

A RUNNING submission carries ``progress`` (0-100, ``-1`` once failed; some CDM versions
leave it out) and ``creation-date``. Each look at a running job is one observation:
the monotonic time it was seen, the progress read, and when its run started (on the same
monotonic clock: the caller converts ``creation-date``, or better ``execute-date`` when
the API sends it). A :class:`ProgressTrack` keeps what the observations of one run say,
in a few numbers; :meth:`EstimatePolicy.next_look` answers when to look at the job next.

Rules:

* A track follows one run. An observation whose start differs by more than ``SAME_RUN``
  seconds (a new submission; a start converted from the API's dates to the monotonic
  clock wobbles by less) begins a new track; an answer older than the latest look is
  ignored. :func:`run_started` gives the start from a submission.
* Progress that is missing, negative (``-1``) or not a finite number says nothing about
  the pace: the look is counted, the reading is not. Readings above 100 are 100.
* Progress never goes back: a reading below the best seen counts as a stall at the best.
* Until some reading is above 0 there is no prediction: on some versions progress stays
  at 0 until the end, on others it is never sent. Then the caller's own interval for a
  running job (``fallback``, today's schedule) decides.
* The run is assumed to go on at its pace, measured three ways, each up to the latest
  reading: since the run started (robust to jumps and stalls, but the start counts the
  booting time, so it predicts late by about the boot); since the first reading (blind
  to booting); since the reading before the progress last moved (the pace after a
  stall). A fourth way follows a pace that grows (a slow start, as tables whose first
  rows are the slowest to read show): the work done as a power of the running time,
  fitted through the first reading of at least ``ANCHOR`` percent and the latest one
  (used only when the power is above 1, and at most ``MAX_POWER``; each linear pace
  predicts such a run late). The earliest predicted end wins: looking early costs one
  request, looking late costs detection lag. A start after the reading (clocks that
  disagree) is ignored.
* A stall needs no rule of its own: every reading at the same progress lowers each pace,
  and moves the prediction later in proportion.
* Progress at 100 while still running: the end is now.
* Before the predicted end:
  - with the pace since the start only, look ``refine`` of the way there, to measure a
    pace between two readings (never later than ``fallback``);
  - once a reading moved the progress and its prediction agrees with the one before it
    (within ``agree`` of the time left), the prediction is confirmed: look at the
    predicted end itself, however far (up to ``max_wait``);
  - otherwise look at the predicted end, but never later than ``fallback``; with
    ``doubling`` (or ``anchored``, until a pace is measured from a reading of at least
    ``ANCHOR`` percent) never later than the run has run so far either.
* Late: once a look finds the job still running at or after its predicted end, every
  further look of the run waits ``soon * 2**(n-1)`` seconds after the n-th late look, up
  to ``fallback``: soon after the end was due, then less often, so a job stuck at 99%
  does not eat the budget. A late look that moved the progress may look sooner, at the
  end its pace predicts.
* Bounds, always: never sooner than ``min_gap`` seconds, never later than ``max_wait``
  seconds after the look (nothing starves, however wrong the prediction). Waits from a
  prediction that is not confirmed are also held within ``fallback``, so a running job
  is never looked at less often than today's schedule would unless its end is
  predicted, confirmed, and further away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ._models import Submission
from ._schedule import require_seconds

__all__ = [
    "ANCHOR",
    "MAX_POWER",
    "SAME_RUN",
    "EstimatePolicy",
    "ProgressTrack",
    "observe",
    "run_started",
    "starts_exactly",
]

SAME_RUN = 1.0
"""Seconds two starts may differ by and still be the same run."""
ANCHOR = 1.0
"""Least progress (percent) of the reading a growing pace is fitted from: below it, the
API's rounding (to 0.1) says little of the shape."""
MAX_POWER = 4.0
"""The steepest growth of the pace the power fit believes."""


def run_started(
    submission: Submission, *, monotonic: float, epoch: float, server_offset: float = 0.0
) -> float | None:
    """When ``submission``'s run started, on the monotonic clock that reads ``monotonic``
    while the local wall clock reads ``epoch``: ``execute-date`` (the start of RUNNING)
    where the API sends it, else ``creation-date`` (booting included); None without
    either. The API's dates are on the server's clock, ``server_offset`` seconds ahead of
    the local one (see ``_server_time``)."""
    server_now = epoch + server_offset
    executed = _execute_date(submission)
    if executed is not None:
        return monotonic - (server_now - executed)
    if submission.creation_date is None:
        return None
    return monotonic - (server_now - submission.creation_date.timestamp())


def starts_exactly(submission: Submission) -> bool:
    """The answer dates the start of RUNNING (``execute-date``): :func:`run_started` is
    when the work began, not when the run was created (booting included)."""
    return _execute_date(submission) is not None


def _execute_date(submission: Submission) -> float | None:
    """``execute-date`` in epoch seconds, when the answer carries a usable one."""
    executed = submission.raw.get("execute-date")
    if isinstance(executed, int | float) and not isinstance(executed, bool):
        seconds = float(executed) / 1000.0
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    return None


@dataclass(frozen=True, slots=True)
class ProgressTrack:
    """What the looks at one run said. Times are monotonic seconds, progress 0-100."""

    started: float
    """When the run started (the caller's best knowledge, on the monotonic clock)."""
    first_at: float | None = None
    first_progress: float = 0.0
    """The first reading of the run (the anchor of the second pace)."""
    last_at: float | None = None
    last_progress: float = 0.0
    """The latest reading, never below an earlier one."""
    prior_at: float | None = None
    prior_progress: float = 0.0
    """The latest reading below ``last_progress`` (the anchor of the recent pace)."""
    looked_at: float | None = None
    """The latest look, with or without a reading."""
    previous_end: float | None = None
    """The predicted end before the latest reading, if that reading moved the progress
    (to see whether two paces agree)."""
    late: int = 0
    """Looks since one first found the job running at or after its predicted end."""
    moved: bool = False
    """The latest look read more progress than the reading before."""
    anchor_at: float | None = None
    anchor_progress: float = 0.0
    """The first reading of at least :data:`ANCHOR` percent (the anchor of the power fit)."""
    exact_start: bool = False
    """``started`` is when the work began (:func:`starts_exactly`): only then is a growing
    pace fitted (from a creation date, the booting would read as growth)."""

    def predicted_end(self) -> float | None:
        """When the run should end at its average pace; None without a reading above 0."""
        if self.last_at is None or self.last_progress <= 0.0:
            return None
        if self.last_progress >= 100.0:
            return self.last_at
        ends = (
            self._start_pace_end(),
            self._paced_end(self.first_at, self.first_progress),
            self._paced_end(self.prior_at, self.prior_progress),
            self._growing_end(),
        )
        known = [end for end in ends if end is not None]
        return min(known) if known else None

    def _start_pace_end(self) -> float | None:
        assert self.last_at is not None
        elapsed = self.last_at - self.started
        if elapsed <= 0.0:
            return None  # a start after the reading: clocks disagree, trust the readings
        return self.last_at + elapsed * (100.0 - self.last_progress) / self.last_progress

    def _paced_end(self, since: float | None, progress: float) -> float | None:
        """The end at the pace from the reading ``(since, progress)`` to the latest."""
        if since is None or self.last_at is None:
            return None
        span = self.last_at - since
        gained = self.last_progress - progress
        if span <= 0.0 or gained <= 0.0:
            return None
        return self.last_at + span * (100.0 - self.last_progress) / gained

    def _growing_end(self) -> float | None:
        """The end where the work done grows as a power of the running time, fitted
        through the anchor and the latest reading; None unless the power is above 1."""
        if not self.exact_start or self.anchor_at is None or self.last_at is None:
            return None
        early, late = self.anchor_at - self.started, self.last_at - self.started
        if not 0.0 < early < late or not 0.0 < self.anchor_progress < self.last_progress:
            return None
        power = math.log(self.last_progress / self.anchor_progress) / math.log(late / early)
        if power <= 1.0:
            return None  # a steady or slowing pace: the linear paces say it
        power = min(power, MAX_POWER)
        growth: float = (100.0 / self.last_progress) ** (1.0 / power)
        return self.started + late * growth

    @property
    def paced_twice(self) -> bool:
        """A pace between readings is measured: the prediction does not rest on the start
        alone."""
        return self._paced_end(self.first_at, self.first_progress) is not None


def observe(
    track: ProgressTrack | None,
    *,
    at: float,
    progress: float | None,
    started: float,
    exact_start: bool = False,
) -> ProgressTrack:
    """The track after a look at ``at`` that read ``progress`` (None: not sent) of the run
    that started at ``started`` (``exact_start``: see :func:`starts_exactly`). ``track``
    None, or of another start: a new run."""
    if track is None or abs(track.started - started) > SAME_RUN:
        track = ProgressTrack(started=started, exact_start=exact_start)
    if track.looked_at is not None and at < track.looked_at:
        return track  # an answer older than one already read: it says nothing new
    due = track.predicted_end()
    late = track.late + 1 if track.late or (due is not None and at >= due) else 0
    usable = progress is not None and math.isfinite(progress) and progress >= 0.0
    if not usable:
        return replace(track, looked_at=at, late=late, moved=False)
    assert progress is not None
    reading = min(progress, 100.0)
    if track.anchor_at is None and reading >= ANCHOR:
        track = replace(track, anchor_at=at, anchor_progress=reading)
    if track.last_at is None:
        return replace(
            track,
            first_at=at,
            first_progress=reading,
            last_at=at,
            last_progress=reading,
            looked_at=at,
            late=late,
        )
    moved = reading > track.last_progress
    return replace(
        track,
        last_at=at,
        last_progress=max(reading, track.last_progress),
        prior_at=track.last_at if moved else track.prior_at,
        prior_progress=track.last_progress if moved else track.prior_progress,
        looked_at=at,
        previous_end=due if moved else None,  # a stall confirms nothing
        late=late,
        moved=moved,
    )


@dataclass(frozen=True, slots=True)
class EstimatePolicy:
    """When to look at a running job, from its :class:`ProgressTrack`. Seconds."""

    min_gap: float = 2.0
    """Least time between two looks at one job."""
    max_wait: float = 60.0
    """Most time between two looks at one running job, whatever the prediction (the
    default is ``PollPolicy.max_interval``: a failure part way is seen no later than
    today; longer saves looks at steady jobs and sees failures later)."""
    soon: float = 5.0
    """First wait once the predicted end has passed (doubling with each further look)."""
    refine: float = 0.5
    """Share of the way to a start-paced prediction at which to look again."""
    agree: float = 0.1
    """Two predictions agree when they differ by at most this share of the time left."""
    doubling: bool = False
    """Until a prediction is confirmed, look again no later than the run has run so far
    (the looks at most double the running time seen): a slow start says little of the
    pace to come. For looks that nothing else bounds (between sweeps of the list)."""
    confirm_share: float = 0.0
    """Least share of the progress left at the first reading that the readings must
    have covered for a prediction to be confirmed: the API rounds progress to 0.1, so
    two paces measured over a few tenths agree without saying much."""
    anchored: bool = False
    """Until a pace is measured from a reading of at least :data:`ANCHOR` percent, a
    prediction that is not confirmed is looked at no later than the run has run so far
    (as ``doubling`` does, for those runs only): before that the shape of the run is
    unknown (a slow start reads a few tenths, and paces that disagree put its end
    hours away), and from then on a growing pace is fitted. A steady run passes 1%
    within its first hundredth, and its paces agree: a look more at most."""

    def __post_init__(self) -> None:
        require_seconds(self, "min_gap", "max_wait", "soon")
        if self.max_wait < self.min_gap:
            raise ValueError("max_wait must be at least min_gap")
        if not 0 <= self.confirm_share <= 1:
            raise ValueError("confirm_share must be in [0, 1]")
        if not 0 < self.refine <= 1:
            raise ValueError("refine must be in (0, 1]")
        if not self.agree >= 0:
            raise ValueError("agree must not be negative")

    def confirmed(self, track: ProgressTrack) -> bool:
        """The latest reading agreed with the prediction made before it."""
        end, before, at = track.predicted_end(), track.previous_end, track.last_at
        if end is None or before is None or at is None or not track.paced_twice:
            return False
        covered = track.last_progress - track.first_progress
        if covered < self.confirm_share * (100.0 - track.first_progress):
            return False
        return abs(end - before) <= self.agree * max(end - at, 0.0) + self.min_gap

    def next_look(self, track: ProgressTrack, now: float, fallback: float) -> float:
        """When to look next at the running job ``track`` follows, looked at ``now``.

        ``fallback`` is the wait the caller would use without progress (its state-aware
        interval for a running job): it applies while there is no prediction, and bounds
        the wait while the prediction is unconfirmed or has passed.
        """
        end = track.predicted_end()
        if track.late:
            wait = min(self.soon * 2.0 ** min(track.late - 1, 30), fallback)
            if track.moved and end is not None and end > now:
                wait = min(wait, end - now)  # progress moved: its pace says the end is nearer
        elif end is None:
            wait = fallback
        elif not track.paced_twice:
            wait = min((end - now) * self.refine, self._unconfirmed(track, now, fallback))
        elif self.confirmed(track):
            wait = end - now
        else:
            ahead = (end - now) * (self.refine if self.doubling else 1.0)
            wait = min(ahead, self._unconfirmed(track, now, fallback))
        return now + min(max(wait, self.min_gap), self.max_wait)

    def _unconfirmed(self, track: ProgressTrack, now: float, fallback: float) -> float:
        """The longest wait while a prediction is not confirmed."""
        if (self.doubling or self._below_anchor(track)) and now > track.started:
            return min(fallback, now - track.started)
        return fallback

    def _below_anchor(self, track: ProgressTrack) -> bool:
        """``anchored``, and no pace of the run is measured from a reading of at least
        :data:`ANCHOR` percent yet."""
        return self.anchored and (track.anchor_at is None or track.last_at == track.anchor_at)
