"""JobStatus: the one table that says which statuses end a job, and how."""

from __future__ import annotations

import pytest

from cdm_status import JobStatus

# (terminal, success, failure) for every member, from cdm-api-notes.md "Status values".
EXPECTED = {
    JobStatus.NEW: (False, False, False),
    JobStatus.PENDING: (False, False, False),
    JobStatus.BOOTING: (False, False, False),
    JobStatus.RUNNING: (False, False, False),
    JobStatus.NEVER_EXECUTED: (False, False, False),
    JobStatus.UNKNOWN: (False, False, False),
    JobStatus.OTHER: (False, False, False),
    JobStatus.SUCCEEDED: (True, True, False),
    JobStatus.FAILED: (True, False, True),
    JobStatus.FAILURE_ON_SUBMIT: (True, False, True),
    JobStatus.STOPPED: (True, False, True),
}


def test_the_table_covers_every_member() -> None:
    assert set(EXPECTED) == set(JobStatus)


@pytest.mark.parametrize("status", list(JobStatus), ids=str)
def test_terminal_success_failure(status: JobStatus) -> None:
    assert (status.is_terminal, status.is_success, status.is_failure) == EXPECTED[status]


@pytest.mark.parametrize("status", [s for s in JobStatus if s is not JobStatus.OTHER], ids=str)
def test_parse_known_strings(status: JobStatus) -> None:
    assert JobStatus.parse(status.value) is status
    assert JobStatus.parse(f"  {status.value.lower()} ") is status


@pytest.mark.parametrize("raw", ["", "  ", "DONE", "succeeded!", "OTHER", "other", "运行中", "\0"])
def test_parse_unknown_strings_is_other(raw: str) -> None:
    # "OTHER" on the wire is a string we do not know either: it must not pose as a member.
    assert JobStatus.parse(raw) is JobStatus.OTHER


def test_str_is_the_wire_value() -> None:
    assert str(JobStatus.FAILURE_ON_SUBMIT) == "FAILURE_ON_SUBMIT"
