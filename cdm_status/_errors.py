"""The exception tree, and the one function that maps an HTTP answer onto it.

::

    CDMError
    ├── APIError                    the API answered with an error (status_code, error_code,
    │   │                           error_msg, request_id, job_name, retry_after)
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401 (bad AK/SK, bad or expired token: APIG.0301)
    │   ├── PermissionDeniedError   403
    │   ├── JobNotFoundError        404, or Cdm.0100 / Cdm.0054 whatever the HTTP status
    │   ├── RateLimitedError        429, or APIG.0308 whatever the HTTP status
    │   └── ServerError             5xx
    │       └── ServiceUnavailableError   503
    ├── TransportError              no answer: connection, TLS or timeout (wraps httpx)
    ├── ResponseFormatError         an answer that is not the documented shape
    ├── JobFailedError              a waited-for job ended in failure (carries the submission)
    ├── JobDeletedError             CDM deleted a waited-for job after its run, before its
    │                               result was read (carries the last submission seen)
    ├── WaitTimeoutError            a wait ran out of time (carries the last submission seen)
    └── WaiterClosedError           the waiter stopped while a subscription still waited

Errors carry data, never secrets: no AK, SK, token or ``Authorization`` value is ever put
in a message or a repr.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Submission

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CDMError",
    "JobDeletedError",
    "JobFailedError",
    "JobNotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ResponseFormatError",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "WaitTimeoutError",
    "WaiterClosedError",
    "error_from_response",
    "is_permanent",
    "parse_retry_after",
]

# CDM codes that mean "this job does not exist", documented with HTTP 400 in one place
# and HTTP 500 in another: the code decides, not the status.
NOT_FOUND_CODES = frozenset({"Cdm.0100", "Cdm.0054"})
THROTTLED_CODES = frozenset({"APIG.0308"})
_MAX_MESSAGE = 500


class CDMError(Exception):
    """Base class of every error this library raises.

    Every error survives ``pickle`` and ``copy`` with its message and fields (outcomes
    cross process boundaries: task queues, multiprocessing, Airflow). Catch it to handle
    anything the client or the waiter may raise about CDM; a ``ValueError`` (an argument
    that cannot be sent) is not one.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls ``cls(*args)``, which keyword-only fields refuse.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[CDMError], args: tuple[Any, ...], fields: dict[str, Any]) -> CDMError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


class APIError(CDMError):
    """The API answered with an error status.

    Raised by every ``CDMClient`` call when the answer is an HTTP error (once the client's
    retries ran out: a read retries a 429, 502, 503 or 504; a start or stop only a 429),
    and by ``JobStatusWaiter.wait`` for the permanent error that ended the wait. The
    message holds the HTTP status, CDM's or the gateway's code and message, the job and
    the request id; each is also an attribute. A subclass says which kind of error it is;
    this class itself is raised for a status no subclass covers (a redirect, say).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_code: str | None = None,
        error_msg: str | None = None,
        request_id: str | None = None,
        job_name: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        """The HTTP status of the answer."""
        self.error_code = error_code
        """CDM's ``errCode`` or the gateway's ``error_code`` (``Cdm.0100``, ``APIG.0301``),
        if the body had one."""
        self.error_msg = error_msg
        """The error message of the body (at most 500 characters), if it had one."""
        self.request_id = request_id
        """The ``X-Request-Id`` of the answer (or the body's ``request_id``): quote it to
        Huawei Cloud support."""
        self.job_name = job_name
        """The job the request was about; None for the job list."""
        self.retry_after = retry_after
        """Seconds the answer's ``Retry-After`` header asked to wait, if it had one."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, "
            f"error_code={self.error_code!r}, error_msg={self.error_msg!r}, "
            f"request_id={self.request_id!r}, job_name={self.job_name!r})"
        )


class BadRequestError(APIError):
    """HTTP 400 that is not a "job not found": a request CDM refuses.

    ``CDMClient.start_job`` of a running job (``Cdm.0052``), ``CDMClient.stop_job`` of a
    job that is not running (``Cdm.0053``), or a malformed request. Never retried.
    """


class AuthenticationError(APIError):
    """HTTP 401: the credentials were refused (wrong AK/SK, bad or expired token).

    The gateway's ``APIG.0301``. Never retried; a waiter that sees it ends every job it
    watches (each would be refused too) with an ``ERROR`` outcome carrying it.
    """


class PermissionDeniedError(APIError):
    """HTTP 403: the credentials lack permission. Never retried; it ends the watch of the
    job it was about."""


class JobNotFoundError(APIError):
    """The job (or the project or cluster) does not exist.

    HTTP 404, or CDM's ``Cdm.0100`` / ``Cdm.0054`` whatever the HTTP status (CDM documents
    them with 400 and 500). A waiter ends the watch of a job never seen to exist
    ``NOT_FOUND`` after ``PollPolicy.not_found_grace`` of them in a row (new jobs may lag),
    riding out the ones before; ``JobStatusWaiter.wait`` raises it then.
    """


class RateLimitedError(APIError):
    """The gateway throttled the request (HTTP 429 / ``APIG.0308``).

    The client retries it (and pauses every request through it: a 429 means the budget
    was overspent) and raises it only when its retries ran out; ``retry_after`` is set
    when the gateway sent ``Retry-After``. A waiter rides it out.
    """


class ServerError(APIError):
    """HTTP 5xx: CDM or the gateway failed.

    The client retries a 502, 503 or 504 of a read and raises it once its retries ran
    out; a 500 (CDM's ``Cdm.0000`` system error, say), or any 5xx of a start or stop, is
    raised at once. A waiter rides them out.
    """


class ServiceUnavailableError(ServerError):
    """HTTP 503: the service is unavailable (retried as any 502-504)."""


class TransportError(CDMError):
    """No HTTP answer: connection refused or reset, TLS failure, or a timeout.

    ``endpoint`` is the ``host:port`` that was asked (the message names it too);
    ``connected`` is False when no connection was ever made (refused, DNS, TLS, connect
    timeout): such a request surely did nothing on the server.

    Raised once the client's retries ran out: a read is retried, a start or stop only
    when it never connected (otherwise whether it was acted on is unknown). A waiter
    rides it out.
    """

    def __init__(self, message: str, *, endpoint: str | None = None, connected: bool = True):
        super().__init__(message)
        self.endpoint = endpoint
        """The ``host:port`` that was asked."""
        self.connected = connected
        """False when no connection was ever made: the request surely did nothing."""


class ResponseFormatError(CDMError):
    """A response that is not the documented shape: not JSON, too big, wrong types.

    A proxy's HTML error page instead of JSON, a required field missing or of the wrong
    type. Not retried by the client; a waiter rides it out as a failed poll.
    """


class JobFailedError(CDMError):
    """A waited-for job ended without success (FAILED, FAILURE_ON_SUBMIT, STOPPED).

    Raised by ``JobStatusWaiter.wait``, after CDM's automatic retries of the job if it has
    them. The message names the job, its status and CDM's error summary.

    Args:
        submission: The run that failed (the last one, after any retries).
        attempts: The earlier runs that failed and were retried by CDM, oldest first.
    """

    def __init__(self, submission: Submission, attempts: tuple[Submission, ...] = ()) -> None:
        summary = f": {submission.error_summary}" if submission.error_summary else ""
        retried = f" (after {len(attempts)} automatic retries)" if attempts else ""
        super().__init__(
            f"job {submission.job_name!r} ended {submission.raw_status}{retried}{summary}"
        )
        self.submission = submission
        """The run that failed: its status, counters and dates."""
        self.attempts = attempts
        """Earlier runs that failed and were retried by CDM (``RETRY_TRIPLE``)."""
        self.job_name = submission.job_name
        """The job."""
        self.error_summary = submission.error_summary
        """CDM's one-line error of the run (``submission.error_summary``), if any."""
        self.error_details = submission.error_details
        """CDM's full error of the run (a Java stack trace, often), if any."""


class JobDeletedError(CDMError):
    """CDM deleted a waited-for job after its run, before its result could be read.

    The job's ``schedulerConfig.disposableType`` is ``DELETE`` (deleted whatever the
    result), or it says it deletes itself in a way that does not tell a success: whether
    the run succeeded is unknown. ``disposable`` is the setting as CDM spelled it (None
    when only the submission's ``isDeleteJob`` said so).

    Raised by ``JobStatusWaiter.wait`` (unless ``deleted_ok``); the ``error`` of a
    ``DELETED`` outcome. The message says how to keep the job until its result is read.

    Args:
        job_name: The job.
        submission: The last submission seen before the deletion, if any.
        disposable: The job's ``schedulerConfig.disposableType``, if it was read.
    """

    def __init__(
        self, job_name: str, submission: Submission | None, disposable: str | None = None
    ) -> None:
        seen = f"last seen {submission.raw_status}" if submission is not None else "never seen"
        setting = (
            f"schedulerConfig.disposableType is {disposable}"
            if disposable
            else ("its run said isDeleteJob")
        )
        super().__init__(
            f"job {job_name!r} was deleted by CDM after its run, before its result was "
            f"read ({seen}; {setting}): whether it succeeded is unknown. To keep the job "
            "until its result is read, set schedulerConfig.disposableType to NONE or "
            "DELETE_AFTER_SUCCEED"
        )
        self.job_name = job_name
        """The job."""
        self.submission = submission
        """The last submission seen before the deletion; None if none was seen."""
        self.disposable = disposable
        """``schedulerConfig.disposableType`` as CDM spelled it, if it was read."""


class WaitTimeoutError(CDMError):
    """A wait ran out of time before the job reached a terminal status.

    Raised by ``JobStatusWaiter.wait`` when its ``timeout`` passed; the job goes on
    running. (``wait_all`` and ``watch`` end such a job with a ``TIMED_OUT`` outcome
    instead.)

    Args:
        job_name: The job.
        submission: The last submission seen, if any.
        elapsed: Seconds waited, on the waiter's clock.
    """

    def __init__(self, job_name: str, submission: Submission | None, elapsed: float) -> None:
        seen = submission.raw_status if submission else "nothing"
        super().__init__(
            f"job {job_name!r} still not finished after {elapsed:.1f}s (last seen: {seen})"
        )
        self.job_name = job_name
        """The job."""
        self.submission = submission
        """The last submission seen (its status, progress); None if none was seen."""
        self.elapsed = elapsed
        """Seconds waited, on the waiter's clock."""


class WaiterClosedError(CDMError):
    """The waiter stopped (its ``async with`` block ended) while a subscription still
    waited for jobs: they have no outcome, and will get none from this waiter.

    Raised by iterating a ``Subscription`` (``async for event in subscription``) that
    outlived the ``async with JobStatusWaiter(client) as waiter:`` block running it: read
    subscriptions inside that block.

    Args:
        pending: How many of the subscription's jobs still had no outcome.
    """

    def __init__(self, pending: int) -> None:
        super().__init__(
            f"the waiter stopped with {pending} job(s) of this subscription still watched: "
            "read subscriptions inside the `async with JobStatusWaiter(client) as waiter:` "
            "block that runs them"
        )
        self.pending = pending
        """How many of the subscription's jobs still had no outcome."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.pending,))


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date.

    ``now`` is the wall clock (epoch seconds) that an HTTP date is measured against.
    Returns None for a missing or unreadable value; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.fromtimestamp(now, tz=timezone.utc)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, request id) from either error body, or Nones."""
    try:
        decoded: Any = json.loads(body) if body else None
    except (ValueError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        return None, None, None

    def text(*keys: str) -> str | None:
        for key in keys:
            value = decoded.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_MESSAGE]
        return None

    # CDM: {"errCode", "externalMessage"}; API gateway: {"error_code", "error_msg"}.
    code = text("errCode", "error_code", "code")
    message = text("externalMessage", "error_msg", "message", "errMsg")
    return code, message, text("request_id")


def _class_for(status_code: int, error_code: str | None) -> type[APIError]:
    if error_code in NOT_FOUND_CODES:
        return JobNotFoundError
    if error_code in THROTTLED_CODES or status_code == 429:
        return RateLimitedError
    by_status: dict[int, type[APIError]] = {
        400: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: JobNotFoundError,
        503: ServiceUnavailableError,
    }
    if status_code in by_status:
        return by_status[status_code]
    if 500 <= status_code <= 599:
        return ServerError
    return APIError


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    job_name: str | None = None,
    now: float,
) -> APIError:
    """The typed error for an error answer. Pure: no I/O.

    ``headers`` must be case-insensitive (``httpx.Headers`` is); ``now`` is the wall clock
    that a ``Retry-After`` HTTP date is measured against.
    """
    code, message, body_request_id = _error_fields(body)
    request_id = headers.get("x-request-id") or body_request_id
    retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    cls = _class_for(status_code, code)
    summary = f"HTTP {status_code}"
    if 300 <= status_code < 400:
        summary += ": the API redirected; redirects are not followed"
    if code:
        summary += f" {code}"
    if message:
        summary += f": {message}"
    if job_name is not None:
        summary += f" (job {job_name!r})"
    if request_id:
        summary += f" [request {request_id}]"
    return cls(
        summary,
        status_code=status_code,
        error_code=code,
        error_msg=message,
        request_id=request_id,
        job_name=job_name,
        retry_after=retry_after,
    )


def is_permanent(error: BaseException) -> bool:
    """True for an answer that polling again will not change (bad credentials, 4xx).

    Not found, throttling, 5xx, network failures and malformed bodies are transient: the
    waiter rides them out. Anything that is not a ``CDMError`` is a bug, and permanent.
    """
    if isinstance(error, RateLimitedError | JobNotFoundError):
        return False
    if isinstance(error, APIError):
        return error.status_code < 500
    return not isinstance(error, CDMError)
