"""How a simulated job is set up: CDM's delete-after-run and automatic-retry settings.

Written from CDM's job parameter reference, independently of the client's reading of it
(``cdm_status._settings``): the simulator renders these as ``driver-config-values``.

* ``disposable`` (``schedulerConfig.disposableType``): ``NONE`` keeps the job;
  ``DELETE_AFTER_SUCCEED`` deletes it ``delete_delay`` seconds after a successful run;
  ``DELETE`` after its run whatever the result (after the last retry). From then on
  every request about it answers ``Cdm.0100``; its runs' ``isDeleteJob`` is true.
* ``retry`` (``retryJobConfig.retryJobType``): ``NONE``, or ``RETRY_TRIPLE``: a FAILED
  run is followed, ``retry_delay`` seconds after it ended, by a new submission (its
  ``submission-id`` one more), up to three times or until one succeeds. The retries'
  plans are ``retry_plans`` in order, then drawn like the job's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._timeline import JobPlan

__all__ = ["DISPOSABLE_TYPES", "RETRY_TYPES", "JobSetup"]

DISPOSABLE_TYPES = ("NONE", "DELETE_AFTER_SUCCEED", "DELETE")
"""The values of ``JobSetup.disposable`` (CDM's ``schedulerConfig.disposableType``)."""
RETRY_TYPES = ("NONE", "RETRY_TRIPLE")
"""The values of ``JobSetup.retry`` (CDM's ``retryJobConfig.retryJobType``)."""
_RETRIES = {"NONE": 0, "RETRY_TRIPLE": 3}


@dataclass(frozen=True, slots=True)
class JobSetup:
    """A simulated job's delete-after-run and automatic-retry settings.

    The simulator renders them in the job's definition (``driver-config-values``) as CDM
    does, and plays them: a deletion after the run answers ``Cdm.0100`` from then on (and
    the runs say ``isDeleteJob``); a retried failure is followed by a new submission.

    Raises:
        ValueError: An unknown ``disposable`` or ``retry``, a negative or infinite delay,
            or more ``retry_plans`` than ``retry`` allows.
    """

    disposable: str = "NONE"
    """``schedulerConfig.disposableType``: ``NONE`` keeps the job;
    ``DELETE_AFTER_SUCCEED`` deletes it ``delete_delay`` seconds after a successful run;
    ``DELETE`` after its run whatever the result (after the last retry)."""
    retry: str = "NONE"
    """``retryJobConfig.retryJobType``: ``NONE``, or ``RETRY_TRIPLE``: a ``FAILED`` run is
    followed, ``retry_delay`` seconds after it ended, by a new submission (its
    ``submission-id`` one more), up to three times or until one succeeds."""
    retry_delay: float = 30.0
    """Seconds from a failed run's end to the submission of its retry."""
    delete_delay: float = 0.1
    """Seconds from the end of the run to the job's deletion."""
    retry_plans: tuple[JobPlan, ...] = ()
    """Plans of the retries, first retry first; the rest are drawn."""

    def __post_init__(self) -> None:
        if self.disposable not in DISPOSABLE_TYPES:
            raise ValueError(f"disposable must be one of {', '.join(DISPOSABLE_TYPES)}")
        if self.retry not in RETRY_TYPES:
            raise ValueError(f"retry must be one of {', '.join(RETRY_TYPES)}")
        for name in ("retry_delay", "delete_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")
        if len(self.retry_plans) > self.retries:
            raise ValueError(f"at most {self.retries} retry plans for retry={self.retry}")

    @property
    def retries(self) -> int:
        """How many times a failed run is run again."""
        return _RETRIES[self.retry]

    @property
    def deletes(self) -> bool:
        """The job is deleted after (some of) its runs: ``isDeleteJob``."""
        return self.disposable != "NONE"

    def deleted_after(self, succeeded: bool) -> bool:
        """Whether a last run that ended so deletes the job.

        Args:
            succeeded: The last run succeeded.
        """
        return self.disposable == "DELETE" or (
            self.disposable == "DELETE_AFTER_SUCCEED" and succeeded
        )


DEFAULT_SETUP = JobSetup()
