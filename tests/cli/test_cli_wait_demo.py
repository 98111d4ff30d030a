"""``cdm-status demo``: the wait code path against a served simulator, checking itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cdm_status import JobStatus, OutcomeKind
from cdm_status.cli._demo import PARENT, add_migration, checks, plan, table_names
from cdm_status.testing import CDMSimulator, FakeClock


def test_table_names_are_distinct_and_plausible() -> None:
    names = table_names(130)
    assert len(set(names)) == 130
    assert names[:2] == ["sales_orders", "crm_orders"]
    assert names[-1] == "extra_table_0130"


def test_the_speed_up_fits_the_migration_into_the_wanted_time() -> None:
    migration = plan(120, 7, 40.0)
    twin = CDMSimulator(clock=FakeClock(), seed=7)
    names = add_migration(twin, migration)
    ends = [twin.finished_at(name) for name in names]
    duration = max(end for end in ends if end is not None) - twin.clock.time()
    assert duration / migration.speed == pytest.approx(40.0)


def test_checks_catch_an_outcome_that_is_not_the_plan() -> None:
    migration = plan(120, 7, 40.0)
    simulator = CDMSimulator(clock=FakeClock(), seed=7)
    names = add_migration(simulator, migration)
    truth = {
        name: OutcomeKind.SUCCEEDED if status.is_success else OutcomeKind.FAILED
        for name in names
        if (status := simulator.final_status(name)) is not None
    }
    failed = [name for name, kind in truth.items() if kind is OutcomeKind.FAILED]
    assert 2 <= len(failed) <= 8, "a handful of tables fail"
    assert checks(simulator, truth, 1) == []
    assert checks(simulator, truth, 0) == ["wait exited 0, not 1"]
    wrong = {**truth, failed[0]: OutcomeKind.SUCCEEDED}
    assert checks(simulator, wrong, 1)[0].startswith(f"{failed[0]} ended succeeded")
    assert PARENT not in truth


def test_the_demo_runs_as_designed_over_http() -> None:
    command = str(Path(sys.executable).with_name("cdm-status"))
    result = subprocess.run(
        [command, "demo", "--tables", "12", "--seconds", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Simulated CDM serving on http://127.0.0.1:")
    assert any(line.startswith("12 jobs in ") for line in lines)
    assert any(line.startswith("API traffic: ") for line in lines)
    assert any(line.startswith("Every outcome matched the simulator's plan") for line in lines)
    assert lines[-1].strip().startswith(f"cdm-status wait --subjobs-of {PARENT} ")


def test_the_migration_has_one_time_subjobs_and_a_table_that_cdm_retries() -> None:
    migration = plan(120, 7, 40.0)
    simulator = CDMSimulator(clock=FakeClock(), seed=7)
    names = add_migration(simulator, migration)
    deleting = [n for n in names if simulator.setup(n).disposable == "DELETE_AFTER_SUCCEED"]
    assert len(deleting) == 30
    retried = [n for n in names if simulator.setup(n).retry == "RETRY_TRIPLE"]
    assert retried == [f"{PARENT}_{migration.tables[migration.retried]}"]
    assert simulator.attempts(retried[0]) == [JobStatus.FAILED, JobStatus.SUCCEEDED]
    assert simulator.final_status(retried[0]) is JobStatus.SUCCEEDED
    # Self-deleting subjobs that succeed are gone after: the checks still expect success.
    gone = [n for n in deleting if simulator.deleted_at(n) is not None]
    assert gone
    assert all(simulator.final_status(n) is JobStatus.SUCCEEDED for n in gone)
