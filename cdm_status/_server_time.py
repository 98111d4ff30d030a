"""How far the server's clock is from this host's, from what its answers carry. Pure.

Every date CDM serves (``creation-date``, ``execute-date``, ``last-update-date``, the HTTP
``Date`` header) is read on the server's clock; every time the library reads is on this
host's. The two may disagree by seconds, minutes, or (a clock set wrong) years. The
*offset* is server minus local, in seconds: a server date ``d`` happened at local time
``d - offset``. It is estimated as bounds, from three kinds of evidence, each with the
local times ``sent`` (before the request left) and ``received`` (after its answer came):

* an HTTP ``Date`` header ``D`` (whole seconds, truncated, as servers write it) was
  written while the request was on its way, when the server's clock read some time in
  ``[D, D + 1)``: ``D - received <= offset < D + 1 - sent``;
* a date stamped while the request was on its way (the ``creation-date`` of the run a
  start request created): ``stamp - received <= offset <= stamp - sent``;
* any other date in an answer (``creation-date``, ``last-update-date``) was written no
  later than the answer: ``offset >= stamp - received``; only a lower bound. A *recent*
  one (the ``last-update-date`` of a running job, which the server moves on as it
  answers; the ``creation-date`` of a booting one) is also close to the offset; a date of
  a run long over may be hours short of it.

Rules:

* Each kind of evidence (two-sided; recent; other dates) is kept for the last
  :attr:`ServerClock.window` answers. The bounds are the tightest it gives, newest first,
  up to the first piece that contradicts the newer ones: it, and everything older, is set
  aside (a clock was set, stepped or jumped meanwhile).
* A lower bound that contradicts the two-sided evidence is set aside too: a
  ``last-update-date`` later than the ``Date`` header allows comes from another clock
  than the one that dates the answers and the runs' creation (a simulator that plays its
  jobs faster than real time does that).
* A ``Date`` header coarser than a second (two answers more than a second apart with the
  same ``Date``) bounds the offset from below only, from then on.
* With two-sided evidence, the offset is the middle of the bounds; it moves only when new
  evidence puts it outside them, so evidence that only narrows them never shifts a run's
  start as the estimator (``_estimate``) sees it. Without, it is the greatest lower bound
  of the recent dates; without those either, 0 unless the lower bounds say the server is
  ahead (then the greatest of them): the two clocks are taken to agree until an answer
  says otherwise.
* Nothing assumes a size: an offset of -3 years is estimated as well as one of 0.2 s.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Reversible
from datetime import timezone
from email.utils import parsedate_to_datetime

__all__ = ["ServerClock", "parse_http_date"]

DATE_RESOLUTION = 1.0
"""Seconds an HTTP ``Date`` header can tell apart."""

_Bounds = tuple[float, float]


def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT`` and the two
    obsolete forms); None when missing or unreadable."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by the RFC
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _newest_agreeing(evidence: Reversible[_Bounds]) -> _Bounds | None:
    """The bounds all the newest pieces agree on, up to the first that contradicts them
    (``evidence`` oldest first)."""
    low, high = -math.inf, math.inf
    # Every answer runs this: plain comparisons, not max() and min() calls.
    for piece_low, piece_high in reversed(evidence):
        new_low = piece_low if piece_low > low else low
        new_high = piece_high if piece_high < high else high
        if new_low > new_high:
            break
        low, high = new_low, new_high
    return None if low == -math.inf and high == math.inf else (low, high)


class ServerClock:
    """The estimated offset of the server's clock (server minus local, seconds).

    Fed by the client with what each answer carries, read by whatever compares a server
    date with local time (a watch's ``since``, a run's start). Times passed in are local
    wall-clock epoch seconds; nothing here reads a clock.
    """

    __slots__ = (
        "_agreed_answers",
        "_agreed_recent",
        "_agreed_written",
        "_answers",
        "_coarse",
        "_last_date",
        "_offset",
        "_recent",
        "_written",
        "bounds",
        "window",
    )

    def __init__(self, *, window: int = 32) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._answers: deque[tuple[float, float, bool]] = deque(maxlen=window)
        """(low, high, from a Date header) of each answer's own date."""
        self._recent: deque[_Bounds] = deque(maxlen=window)
        self._written: deque[_Bounds] = deque(maxlen=window)
        self._last_date: tuple[float, float] | None = None
        """The last ``Date`` header read, and when the first answer with it came."""
        self._coarse = False
        # What the newest pieces of each kind of evidence agree on: only the kind that
        # just grew is walked again.
        self._agreed_answers: _Bounds | None = None
        self._agreed_recent: _Bounds | None = None
        self._agreed_written: _Bounds | None = None
        self._offset: float | None = None
        self.bounds: _Bounds | None = None
        """The offset lies within these (the upper one may be infinite); None: no
        evidence yet."""

    def __repr__(self) -> str:
        return f"ServerClock(offset={self.offset:.3f}, bounds={self.bounds})"

    @property
    def offset(self) -> float:
        """Server minus local, in seconds (0 until an answer said anything)."""
        return 0.0 if self._offset is None else self._offset

    @property
    def known(self) -> bool:
        """Some answer said something about the server's clock."""
        return self._offset is not None

    @property
    def uncertainty(self) -> float:
        """How wide the bounds are, in seconds (infinite without an upper bound)."""
        if self.bounds is None:
            return math.inf
        return self.bounds[1] - self.bounds[0]

    def server_time(self, local: float) -> float:
        """The server's reading of the local epoch time ``local``."""
        return local + self.offset

    def local_time(self, server: float) -> float:
        """The local reading of the server's epoch time ``server``."""
        return server - self.offset

    # ------------------------------------------------------------------ evidence

    def date_header(self, value: str | None, *, sent: float, received: float) -> None:
        """An answer's HTTP ``Date`` header (missing or unreadable: nothing learnt)."""
        date = parse_http_date(value)
        if date is None or not sent <= received:
            return
        last = self._last_date
        if last is None or last[0] != date:
            self._last_date = (date, received)
        # One Date over more than a second: the header is coarser than it says.
        elif not self._coarse:
            self._coarse = sent - last[1] > DATE_RESOLUTION
            if self._coarse:
                self._answers = deque(
                    (
                        (low, math.inf if dated else high, dated)
                        for low, high, dated in self._answers
                    ),
                    maxlen=self.window,
                )
        high = math.inf if self._coarse else date + DATE_RESOLUTION - sent
        self._answers.append((date - received, high, True))
        self._answers_grew()

    def stamped_during(self, stamp: float, *, sent: float, received: float) -> None:
        """A date the server wrote while the request was on its way."""
        if math.isfinite(stamp) and sent <= received:
            self._answers.append((stamp - received, stamp - sent, False))
            self._answers_grew()

    def stamped_before(self, stamp: float, *, received: float, recent: bool = False) -> None:
        """A date the server wrote no later than the answer received at ``received``;
        ``recent``: moments before it (a running job's last update)."""
        if math.isfinite(stamp):
            if recent:
                self._recent.append((stamp - received, math.inf))
                self._agreed_recent = _newest_agreeing(self._recent)
            else:
                self._written.append((stamp - received, math.inf))
                self._agreed_written = _newest_agreeing(self._written)
            self._update()

    def _answers_grew(self) -> None:
        self._agreed_answers = _newest_agreeing([(low, high) for low, high, _ in self._answers])
        self._update()

    def _update(self) -> None:
        answers, recent = self._agreed_answers, self._agreed_recent
        lows = [bound[0] for bound in (recent, self._agreed_written) if bound is not None]
        if answers is not None:
            low, high = answers
            low = max([low, *(bound for bound in lows if bound <= high)])  # others: aside
            self.bounds = (low, high)
            if math.isinf(high):  # a coarse Date: a lower bound like the others
                self._offset = low
            elif self._offset is None or not low <= self._offset <= high:
                self._offset = (low + high) / 2.0
        elif lows:
            self.bounds = (max(lows), math.inf)
            self._offset = max(lows) if recent is not None else max(0.0, *lows)
