"""cdm-status: watch Huawei Cloud CDM (Cloud Data Migration) jobs from async Python.

``CDMClient`` asks the job-status API; ``JobStatusWaiter`` polls many jobs at once under
the API's rate limit and reports every status change until each job ends.
``cdm_status.testing`` holds a CDM simulator and a fake clock for tests.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from ._auth import AKSKAuth, TokenAuth
from ._budget import Budget
from ._client import CDMClient, JobPage
from ._clock import Clock, LoopClock
from ._definition import DisposableType, JobDefinition, JobEndpoint, JobSettings, RetryType
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CDMError,
    JobDeletedError,
    JobFailedError,
    JobNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    WaiterClosedError,
    WaitTimeoutError,
)
from ._events import (
    Event,
    JobDone,
    JobOutcome,
    OutcomeKind,
    PollFailed,
    RetryExpected,
    StatusChanged,
)
from ._models import Counters, JobStatus, JobSummary, Submission
from ._ratelimit import RateLimiter
from ._redis_budget import RedisBudget  # imports a Redis client only when it connects
from ._retry import RetryPolicy
from ._schedule import PollPolicy
from ._server_time import ServerClock
from ._telemetry import WaiterStats
from ._waiter import JobStatusWaiter, Subscription
from ._wire import subjob_name

try:
    __version__ = version("cdm-status")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AKSKAuth",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "CDMClient",
    "CDMError",
    "Clock",
    "Counters",
    "DisposableType",
    "Event",
    "JobDefinition",
    "JobDeletedError",
    "JobDone",
    "JobEndpoint",
    "JobFailedError",
    "JobNotFoundError",
    "JobOutcome",
    "JobPage",
    "JobSettings",
    "JobStatus",
    "JobStatusWaiter",
    "JobSummary",
    "LoopClock",
    "OutcomeKind",
    "PermissionDeniedError",
    "PollFailed",
    "PollPolicy",
    "RateLimitedError",
    "RateLimiter",
    "RedisBudget",
    "ResponseFormatError",
    "RetryExpected",
    "RetryPolicy",
    "RetryType",
    "ServerClock",
    "ServerError",
    "ServiceUnavailableError",
    "StatusChanged",
    "Submission",
    "Subscription",
    "TokenAuth",
    "TransportError",
    "WaitTimeoutError",
    "WaiterClosedError",
    "WaiterStats",
    "__version__",
    "subjob_name",
]

# A library never decides where log records go: without this, a script that configures no
# logging would get the library's warnings on stderr through Python's last-resort handler.
logging.getLogger("cdm_status").addHandler(logging.NullHandler())
