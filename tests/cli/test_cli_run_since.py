"""``cdm-status run``: the ``since`` of the run it started (the skew allowance)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cdm_status import JobStatus, Submission
from cdm_status._clock import utc_datetime
from cdm_status._server_time import ServerClock
from cdm_status.cli._run import run_since
from cdm_status.cli._wait import SINCE_SKEW

LOCAL = 1_767_225_600.0


def test_the_creation_date_the_start_returned_names_the_run() -> None:
    created = utc_datetime(LOCAL + 3 * 365 * 86400.0)  # whatever the server's clock says
    started = Submission("orders", JobStatus.BOOTING, "BOOTING", creation_date=created)
    assert run_since(started, LOCAL, ServerClock()) == created


@pytest.mark.parametrize("offset", [-900.0, 3 * 365 * 86400.0])
def test_without_a_creation_date_the_time_asked_less_what_the_offset_is_not_known_to(
    offset: float,
) -> None:
    server = ServerClock()
    server.date_header(
        utc_datetime(LOCAL + offset).strftime("%a, %d %b %Y %H:%M:%S GMT"),
        sent=LOCAL - 0.2,
        received=LOCAL,
    )
    since = run_since(Submission.never_executed("orders"), LOCAL + 1, server)
    assert server.uncertainty == pytest.approx(1.2)
    assert since == utc_datetime(LOCAL + 1 - server.uncertainty)
    server.stamped_during(LOCAL + offset, sent=LOCAL - 0.01, received=LOCAL + 0.01)
    since = run_since(Submission.never_executed("orders"), LOCAL + 1, server)
    assert since == utc_datetime(LOCAL + 1 - 1.0)  # never less than the Date's second


def test_nothing_known_of_the_servers_clock_allows_the_usual_skew() -> None:
    since = run_since(Submission.never_executed("orders"), LOCAL, ServerClock())
    assert since == utc_datetime(LOCAL) - timedelta(seconds=SINCE_SKEW)
