"""Large watches log counts per status at most once a minute."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from cdm_status import JobStatus, PollFailed, ServiceUnavailableError, StatusChanged, Submission
from cdm_status.airflow._progress import ProgressLog
from cdm_status.testing import FakeClock

pytestmark = pytest.mark.anyio

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def running(name: str, progress: float) -> StatusChanged:
    sub = Submission(name, JobStatus.RUNNING, "RUNNING", progress=progress)
    return StatusChanged(name, JobStatus.BOOTING, JobStatus.RUNNING, sub, AT)


async def test_large_watches_get_a_progress_line_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    names = [f"t{i}" for i in range(12)]
    log = ProgressLog(names, clock=clock)
    caplog.set_level(logging.INFO, logger="cdm_status.airflow")
    for second in range(0, 300, 5):  # an event every 5 s for 5 minutes
        log(running(names[second % 12], 50.0))
        await clock.advance(5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CDM progress")]
    assert len(lines) == log.lines == 4  # at 60, 120, 180, 240 s
    assert lines[-1] == "CDM progress, 12 jobs: RUNNING 12"


def test_small_watches_get_no_progress_line(caplog: pytest.LogCaptureFixture) -> None:
    log = ProgressLog(["a"], clock=FakeClock())
    caplog.set_level(logging.INFO, logger="cdm_status.airflow")
    log(running("a", 10.0))
    log(PollFailed("a", ServiceUnavailableError("HTTP 503", status_code=503), 2))
    # The ridden-out failure is said (the task's own log); no progress line for one job.
    assert [r.getMessage() for r in caplog.records] == ["polling 'a' failed (2 in a row): HTTP 503"]
    assert log.counts() == {"RUNNING": 1}


def test_the_change_to_a_final_status_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    # The engine logs every change but the one that ends a job's watch: that one is here.
    caplog.set_level(logging.INFO, logger="cdm_status.airflow")
    log = ProgressLog(["a"], clock=FakeClock())
    log(running("a", 50.0))
    done = Submission("a", JobStatus.SUCCEEDED, "SUCCEEDED", progress=100.0)
    log(StatusChanged("a", JobStatus.RUNNING, JobStatus.SUCCEEDED, done, AT))
    assert [r.getMessage() for r in caplog.records] == ["job 'a': RUNNING -> SUCCEEDED"]
