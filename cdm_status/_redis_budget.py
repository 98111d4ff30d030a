"""A request budget shared by every process (and host) that uses the same CDM credentials.

CDM allows 120 status and 120 list requests a minute *per user*, whatever the number of
processes. :class:`RedisBudget` keeps that count in Redis (see ``_redis_script`` for the
one atomic script): each request books its slot in one round trip, a throttle seen by one
process pauses them all, and each process plans its polls with its share of the budget
(the limit divided by the processes alive), not with all of it.

Redis trouble never stops a watch: while Redis does not answer, requests go through a
local limit at this process's last known share (or, with ``on_redis_error="wait"``, wait
for Redis), Redis is tried again every ``retry_interval`` seconds, and the shared budget
takes over again as soon as it answers.

Needs the ``redis`` extra (``pip install 'cdm-status[redis]'``): redis-py's asyncio client
(asyncio only) or coredis (asyncio and trio). ``import cdm_status`` imports neither.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import secrets
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.abc

from ._client import CDMClient
from ._clock import Clock, LoopClock
from ._ratelimit import RateLimiter
from ._redis_script import BUDGET_SCRIPT
from ._tasks import BackgroundTasks, alone

__all__ = ["RedisBudget", "budget_id_for", "check_url", "refusal_of"]

logger = logging.getLogger("cdm_status")

OnRedisError = Literal["local", "wait"]
Library = Literal["auto", "redis", "coredis"]

SOCKET_TIMEOUT = 1.0
"""Seconds a Redis connect or reply may take (clients built by ``from_url``): a frozen
Redis costs each request at most this long before the local limit takes over."""


SCHEMES = ("redis", "rediss", "unix")
URL_OPTIONS = frozenset({"db", "client_name"})
"""Query options of a budget's URL that redis-py and coredis both read the same way."""
TLS_OPTIONS = frozenset(
    {"ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_check_hostname", "ssl_keyfile"}
)
"""The same, for ``rediss://`` only."""


def check_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is a Redis URL that both client libraries read
    the same way: scheme, host (or socket path), port, database, options.

    The libraries read a URL only when they connect, and read a mistake silently (a
    database that is not a number becomes 0) or as a traceback. The message never quotes
    the URL: it may hold a password.
    """
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.lower() not in SCHEMES:
        raise ValueError("the URL must start with redis://, rediss:// or unix://")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        if "IPv6" in str(error):
            raise ValueError("the URL's host is an IPv6 address without its closing ]") from None
        raise ValueError("the URL's port must be a number from 1 to 65535") from None
    if scheme.lower() == "unix":
        if parts.hostname or not parts.path:
            raise ValueError("a unix:// URL names a socket path: unix:///path/to/redis.sock")
        database = None
    else:
        if not parts.hostname:
            raise ValueError("the URL names no host, e.g. redis://localhost:6379/0")
        if port == 0:
            raise ValueError("the URL's port must be a number from 1 to 65535")
        database = parts.path.strip("/") or None
    try:
        options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ValueError("the URL's options must read name=value&name=value") from None
    known = URL_OPTIONS | (TLS_OPTIONS if scheme.lower() == "rediss" else frozenset())
    for name, value in options:
        if name not in known:
            raise ValueError(
                f"the URL has an unknown option {name!r} (known: {', '.join(sorted(known))})"
            )
        if name == "db":
            database = value
    if database is not None and not (database.isascii() and database.isdigit()):
        raise ValueError("the URL's database must be a number, e.g. redis://host:6379/0")


def refusal_of(error: BaseException) -> str | None:
    """Why Redis refused a call, when it answered with an error that retrying will not
    fix: ``"authentication failed: ..."``, ``"permission denied: ..."`` (an ACL without
    ``EVALSHA``), ``"no script support: ..."``, ``"bad database: ..."``. None for any other
    failure (no answer, a timeout, a Redis still loading): those may pass."""
    names = {cls.__name__ for cls in type(error).__mro__}
    text = " ".join(str(error).split()) or type(error).__name__
    head = text.upper()
    if "AuthenticationError" in names or head.startswith(("WRONGPASS", "NOAUTH")):
        kind = "authentication failed"
    elif names & {"NoPermissionError", "AuthorizationError"} or head.startswith("NOPERM"):
        kind = "permission denied"
    elif "unknown command" in text.lower():
        kind = "no script support"
    elif "DB index" in text or "invalid db" in text.lower():
        kind = "bad database"
    else:
        return None
    return f"{kind}: {text}"


def budget_id_for(endpoint: str, project_id: str, ak: str) -> str:
    """The budget's id for a user: a hash of endpoint, project and access key.

    CDM counts requests per user, so every process with the same three shares one budget.
    Only the hash ever reaches Redis, never the key itself.
    """
    material = "\0".join((endpoint.rstrip("/"), project_id, ak)).encode()
    return hashlib.sha256(material).hexdigest()[:24]


def _resolve_id(client: CDMClient | None, budget_id: str | None) -> str:
    """``budget_id`` when given, else the id of ``client``'s user (AK/SK auth only)."""
    if budget_id is not None:
        if not budget_id:
            raise ValueError("budget_id must not be empty")
        return budget_id
    ak = None if client is None else getattr(client.auth, "ak", None)
    if client is None or not isinstance(ak, str) or not ak:
        raise ValueError(
            "a shared budget needs budget_id=... unless the client signs with an access "
            "key: a token rotates, so it cannot name the budget"
        )
    return budget_id_for(client.endpoint, client.project_id, ak)


def _key_tag(budget_id: str) -> str:
    # Hashed again, so an explicit id (which could be anything a user typed) never
    # reaches Redis as is; the braces make every key of one budget one Cluster slot.
    return "cdm-status:{" + hashlib.sha256(budget_id.encode()).hexdigest()[:24] + "}"


@dataclass(frozen=True, slots=True)
class Booking:
    """One answer of the script, on Redis's clock."""

    delay: float
    """Seconds until the booked slot (0 when none was asked for)."""
    sharers: int
    paused_for: float


class _Adapter:
    """The two calls the budget makes, on either client library."""

    def __init__(self, client: Any, library: Literal["redis", "coredis"]) -> None:
        self.client = client
        self.library = library
        # Both libraries run the script by its SHA and load it again after a NOSCRIPT
        # (a Redis restarted empty), in the one call.
        self._script: Callable[..., Any] = client.register_script(BUDGET_SCRIPT)

    async def run(self, keys: list[str], args: list[str]) -> Booking:
        reply = await self._script(keys=keys, args=args)
        delay, sharers, paused_for = reply
        return Booking(float(delay), int(sharers), float(paused_for))

    async def forget(self, key: str, member: str) -> None:
        await self.client.zrem(key, [member] if self.library == "coredis" else member)


def _library_of(client: Any) -> Literal["redis", "coredis"]:
    module = type(client).__module__
    if module.startswith("coredis"):
        return "coredis"
    if module.startswith("redis"):
        return "redis"
    raise TypeError(
        f"RedisBudget needs a redis.asyncio.Redis or a coredis.Redis, not {type(client).__name__}"
    )


def _on_asyncio() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _client_from_url(url: str, library: Library) -> tuple[Any, Literal["redis", "coredis"]]:
    """A client for ``url`` with short timeouts and one immediate retry on a broken
    connection only (a pooled connection to a Redis that restarted), never on a timeout:
    the budget decides what to do when Redis does not answer, and a retry storm helps
    nobody."""
    asyncio = _on_asyncio()
    if library == "auto":
        library = "redis" if asyncio else "coredis"
        if asyncio:
            try:
                import redis.asyncio  # noqa: F401
            except ImportError:
                library = "coredis"
    if library == "redis":
        if not asyncio:
            raise RuntimeError(
                "redis-py's asyncio client runs only under asyncio; under trio use coredis "
                "(pip install 'cdm-status[redis]', library='coredis')"
            )
        try:
            import redis.asyncio as redis_asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise ImportError("RedisBudget needs: pip install 'cdm-status[redis]'") from error
        redis_client: Any = redis_asyncio.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        return redis_client, "redis"
    try:
        import coredis
        from coredis.exceptions import ConnectionError as CoredisConnectionError
        from coredis.retry import ConstantRetryPolicy
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ImportError("RedisBudget needs: pip install 'cdm-status[redis]'") from error
    coredis_client: Any = coredis.Redis.from_url(
        url,
        stream_timeout=SOCKET_TIMEOUT,
        connect_timeout=SOCKET_TIMEOUT,
        retry_policy=ConstantRetryPolicy((CoredisConnectionError,), retries=1, delay=0),
        verify_version=False,
    )
    return coredis_client, "coredis"


@dataclass(frozen=True, slots=True)
class _Connector:
    """What ``from_url`` was given: the client is made when the budget is entered (the
    library depends on the event loop running then)."""

    url: str
    library: Library

    def __call__(self) -> tuple[Any, Literal["redis", "coredis"]]:
        return _client_from_url(self.url, self.library)


class _Link:
    """What the status and list budgets of one process share: the client, this sharer's
    registration, the health of Redis, and throttles waiting to be published."""

    def __init__(
        self,
        *,
        budget_id: str,
        clock: Clock,
        on_redis_error: OnRedisError,
        retry_interval: float,
        sharer_ttl: float,
        speed: float,
        client: Any | None,
        connect: Callable[[], tuple[Any, Literal["redis", "coredis"]]] | None,
    ) -> None:
        self.tag = _key_tag(budget_id)
        self.sharer = secrets.token_hex(8)
        self.clock = clock
        self.on_redis_error = on_redis_error
        self.retry_interval = retry_interval
        self.sharer_ttl = sharer_ttl
        self.speed = speed
        self.sharers = 1
        self.healthy = True
        self.outages = 0
        self.trouble: str | None = None
        """Why Redis is not used right now (see ``RedisBudget.fallback_reason``)."""
        self.refused = False
        self._retry_at = -float("inf")
        self._hold_until = -float("inf")
        self._probing = False
        self._client = client
        self._connect = connect
        self._adapter: _Adapter | None = None
        self._members = itertools.count()
        self.budgets: list[RedisBudget] = []
        self.wake = anyio.Event()

    @property
    def sharers_key(self) -> str:
        return f"{self.tag}:sharers"

    def attach(self, adapter: _Adapter) -> None:
        self._adapter = adapter

    @property
    def adapter(self) -> _Adapter:
        if self._adapter is None:
            raise RuntimeError(
                "enter the budget first: `async with RedisBudget.from_url(...) as budget:`"
            )
        return self._adapter

    def may_call(self) -> bool:
        """Healthy, or due for one probe (only one task probes at a time: no storms)."""
        if self.healthy:
            return True
        return not self._probing and self.clock.monotonic() >= self._retry_at

    async def call(self, budget: RedisBudget, *, take: bool) -> Booking | None:
        """One round trip of the script for ``budget``; None when Redis did not answer."""
        adapter = self.adapter
        probing = not self.healthy
        if probing:
            self._probing = True
        pause, budget.unpublished_pause = budget.unpublished_pause, 0.0
        keys = [f"{budget.prefix}:log", f"{budget.prefix}:state", self.sharers_key]
        args = [
            repr(budget.limit),
            str(budget.burst),
            repr(budget.window),
            self.sharer,
            repr(self.sharer_ttl),
            f"{self.sharer}:{next(self._members)}",
            "1" if take else "0",
            repr(pause),
            repr(self.speed),
        ]
        try:
            booking = await adapter.run(keys, args)
        except Exception as error:  # any failure of Redis or of the client: go local
            budget.unpublished_pause = max(budget.unpublished_pause, pause)
            self._failed(error)
            return None
        finally:
            if probing:
                self._probing = False
        self.trouble, self.refused = None, False
        if not self.healthy:
            self.healthy = True
            # A Redis that lost its data knows only the sharers back so far: keep the
            # share known before until every sharer has had time to register again.
            self._hold_until = self.clock.monotonic() + self.sharer_ttl
            logger.warning("the shared budget on Redis answers again; sharing it again")
        sharers = booking.sharers
        if self.clock.monotonic() < self._hold_until:
            sharers = max(sharers, self.sharers)
        self.sharers = max(1, sharers)
        return booking

    def _failed(self, error: BaseException) -> None:
        self._retry_at = self.clock.monotonic() + self.retry_interval
        error = alone(error)  # a client's own task group may have wrapped it
        refusal = refusal_of(error)
        # The error's class and text only: a client's repr may hold the URL's password.
        trouble = (
            f"refused: {refusal}"
            if refusal is not None
            else f"unreachable: {type(error).__name__}: {' '.join(str(error).split())}"
        )
        was_healthy, was_refused = self.healthy, self.refused
        self.trouble, self.refused = trouble, refusal is not None
        if was_healthy:
            self.healthy = False
            self.outages += 1
            for budget in self.budgets:
                budget.start_fallback()
        if was_healthy or (self.refused and not was_refused):  # each cause said once
            what = (
                "waiting for it"
                if self.on_redis_error == "wait"
                else "using a local limit at this process's share until it answers"
            )
            if refusal is not None:
                logger.warning(
                    "the shared budget on Redis refuses this process (%s); %s", refusal, what
                )
            else:
                logger.warning(
                    "the shared budget on Redis does not answer (%s); %s",
                    trouble.partition(": ")[2],
                    what,
                )

    async def heartbeat(self) -> None:
        """Keep this process registered, and publish throttles as soon as they are seen
        (not only with this process's next request)."""
        while True:
            await self._woken_or_after(self.sharer_ttl / 3)
            if self.may_call():
                for budget in self.budgets:
                    await self.call(budget, take=False)

    async def _woken_or_after(self, seconds: float) -> None:
        async with anyio.create_task_group() as group:

            async def timer() -> None:
                await self.clock.sleep(seconds)
                group.cancel_scope.cancel()

            group.start_soon(timer)
            await self.wake.wait()
            group.cancel_scope.cancel()
        self.wake = anyio.Event()

    async def leave(self) -> None:
        """Unregister, so the others' shares grow at once (not after the TTL)."""
        if self._adapter is None or not self.healthy:
            return
        try:
            await self._adapter.forget(self.sharers_key, self.sharer)
        except Exception:  # leaving is best effort: the TTL removes this sharer anyway
            logger.debug("could not unregister from the shared budget", exc_info=True)


class RedisBudget:
    """The CDM request budget of one API, shared through Redis by every process that uses
    the same credentials; a [`Budget`][cdm_status.Budget].

    ``per_minute`` is *this process's share*: the limit divided by the processes sharing
    the budget now, so a [`JobStatusWaiter`][cdm_status.JobStatusWaiter] plans its polls
    for the rate it will really get. ``acquire()`` books the next slot in one round trip
    and waits for it; no 60-second window ever holds more than ``limit`` requests across
    all processes.
    ``pause()`` (a 429 or ``Retry-After``) pauses every process.

    Use it as an async context manager (it registers this process as a sharer and keeps
    the registration alive)::

        budget = RedisBudget.from_url("redis://localhost:6379/0", client=client)
        client.share_budget(budget, budget.list_budget)  # before its first request
        async with budget:
            outcomes = await JobStatusWaiter(client).wait_all(names)

    ``client`` (a [`CDMClient`][cdm_status.CDMClient] signing with an access key) names the
    budget by a hash of its endpoint, project and access key, so every process of the same
    user shares it; or pass ``budget_id`` (needed with token auth: tokens rotate). Only a
    hash of either reaches Redis.

    ``on_redis_error``: ``"local"`` (default) keeps polling under a local limit at the
    last known share while Redis does not answer; ``"wait"`` waits for Redis instead, for
    those who would rather be late than risk a 429.

    ``speed``: only for a ``clock`` that runs faster than real time (a
    [`ScaledClock`][cdm_status.testing.ScaledClock] against a simulator whose jobs and
    limits play that much faster): Redis's time is read ``speed`` times faster, so the
    window, the pacing and the sharers' TTL count that clock's seconds. 1 against CDM.
    """

    def __init__(
        self,
        redis: Any,
        *,
        client: CDMClient | None = None,
        budget_id: str | None = None,
        per_minute: float = 120,
        list_per_minute: float = 120,
        burst: int = 4,
        window: float = 61.0,
        on_redis_error: OnRedisError = "local",
        retry_interval: float = 5.0,
        sharer_ttl: float = 15.0,
        clock: Clock | None = None,
        speed: float = 1.0,
    ) -> None:
        if on_redis_error not in ("local", "wait"):
            raise ValueError('on_redis_error must be "local" or "wait"')
        if retry_interval <= 0 or sharer_ttl <= 0:
            raise ValueError("retry_interval and sharer_ttl must be positive")
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError("speed must be a positive, finite number")
        connect = redis if isinstance(redis, _Connector) else None
        self._link = _Link(
            budget_id=_resolve_id(client, budget_id),
            clock=clock or LoopClock(),
            on_redis_error=on_redis_error,
            retry_interval=retry_interval,
            sharer_ttl=sharer_ttl,
            speed=float(speed),
            client=None if connect else redis,
            connect=connect,
        )
        self._stack: AsyncExitStack | None = None
        self._init_api("status", per_minute, burst, window)
        self.list_budget = RedisBudget._sibling(self._link, "list", list_per_minute, burst, window)

    # ------------------------------------------------------------------ construction

    def _init_api(self, api: str, per_minute: float, burst: int, window: float) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.api = api
        self.limit = float(per_minute)
        self.burst = min(burst, max(1, int(per_minute)))
        self.window = window
        self.prefix = f"{self._link.tag}:{api}"
        self.unpublished_pause = 0.0
        self._paused_until = -float("inf")
        self._fallback: RateLimiter | None = None
        self._sent: deque[float] = deque()
        """This process's slots over the last window, wherever they came from: a local
        fallback starts from them (see ``start_fallback``)."""
        self.acquired = 0
        self.pauses = 0
        self._link.budgets.append(self)

    @classmethod
    def _sibling(
        cls, link: _Link, api: str, per_minute: float, burst: int, window: float
    ) -> RedisBudget:
        budget = cls.__new__(cls)
        budget._link = link
        budget._stack = None
        budget._init_api(api, per_minute, burst, window)
        return budget

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        client: CDMClient | None = None,
        budget_id: str | None = None,
        library: Library = "auto",
        per_minute: float = 120,
        list_per_minute: float = 120,
        burst: int = 4,
        window: float = 61.0,
        on_redis_error: OnRedisError = "local",
        retry_interval: float = 5.0,
        sharer_ttl: float = 15.0,
        clock: Clock | None = None,
        speed: float = 1.0,
    ) -> RedisBudget:
        """A budget on the Redis at ``url`` (``redis://host:6379/0``, ``rediss://``,
        ``unix://``), with a client of its own made when the budget is entered: redis-py
        under asyncio (``library="auto"``, when installed), coredis under trio.

        The client has 1-second socket timeouts, and retries only a broken connection, once.
        A URL that redis-py and coredis would not read the same way raises ``ValueError``
        here, never quoting it.

        Args:
            url: Where Redis is; it may hold a password (it is never logged or quoted).
            client: The ``CDMClient`` whose endpoint, project and access key name the
                budget (with ``client.share_budget(budget, budget.list_budget)``).
            budget_id: The budget's name instead (needed with token auth: tokens rotate).
            library: ``"auto"``, ``"redis"`` (redis-py, asyncio only) or ``"coredis"``.
            per_minute: The status API's limit for all sharers together.
            list_per_minute: The job list's limit for all sharers together.
            on_redis_error: ``"local"``: while Redis is away, count this process's share
                locally; ``"wait"``: wait for Redis.

        Returns:
            The budget, not yet connected: enter it with ``async with budget:``.

        Raises:
            ValueError: The URL cannot be used (scheme, host, port, database, options).
        """
        check_url(url)
        return cls(
            _Connector(url, library),
            client=client,
            budget_id=budget_id,
            per_minute=per_minute,
            list_per_minute=list_per_minute,
            burst=burst,
            window=window,
            on_redis_error=on_redis_error,
            retry_interval=retry_interval,
            sharer_ttl=sharer_ttl,
            clock=clock,
            speed=speed,
        )

    def __repr__(self) -> str:
        shared = "shared" if self._link.healthy else "local fallback"
        return (
            f"RedisBudget(api={self.api!r}, limit={self.limit:g}, sharers={self._link.sharers}, "
            f"{shared})"
        )

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> RedisBudget:
        link = self._link
        async with AsyncExitStack() as stack:
            if link._connect is not None:
                client, library = link._connect()
            else:
                client, library = link._client, _library_of(link._client)
            if library == "redis" and not _on_asyncio():
                raise RuntimeError(
                    "redis-py's asyncio client runs only under asyncio; under trio pass a "
                    "coredis client (pip install 'cdm-status[redis]')"
                )
            if link._connect is not None:
                if library == "coredis":
                    await stack.enter_async_context(client)
                else:
                    stack.push_async_callback(client.aclose)
            link.attach(_Adapter(client, library))
            for budget in link.budgets:
                await link.call(budget, take=False)  # register now: the others' shares shrink
            group = await stack.enter_async_context(BackgroundTasks())
            group.start_soon(link.heartbeat)
            stack.push_async_callback(self._leave, group)
            self._stack = stack.pop_all()
        return self

    async def _leave(self, group: anyio.abc.TaskGroup) -> None:
        group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._link.leave()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Leave the budget. An exception raised in the block leaves it as raised: the
        heartbeat's task group and the Redis client's own never see it (they would wrap
        it in an ExceptionGroup)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    # ------------------------------------------------------------------ the Budget protocol

    @property
    def per_minute(self) -> float:
        """This process's share of the limit: what it may plan its polls with."""
        return self.limit / max(1, self._link.sharers)

    @property
    def sharers(self) -> int:
        """Processes sharing the budget, as of the last answer from Redis."""
        return self._link.sharers

    @property
    def shared(self) -> bool:
        """False while Redis does not answer (the local fallback is in use)."""
        return self._link.healthy

    @property
    def outages(self) -> int:
        """How many times Redis stopped answering."""
        return self._link.outages

    @property
    def fallback_reason(self) -> str | None:
        """Why the budget is not shared right now; None while Redis answers.

        ``"unreachable: <error>"``: Redis does not answer (it is tried again every
        ``retry_interval``); ``"refused: <cause>"``: it answers with an error that
        retrying will not fix (see [`refused`][cdm_status.RedisBudget.refused])."""
        return self._link.trouble

    @property
    def refused(self) -> bool:
        """True while Redis answers with an error that retrying will not fix: a wrong
        password, an ACL without ``EVALSHA``, no script support, a database that does not
        exist. The budget then goes on under a local limit like an unreachable one; a
        caller that asked for a shared budget may rather stop (the command line exits 2)."""
        return self._link.refused

    def pause(self, seconds: float) -> None:
        """A throttle was seen: this process stops at once, the others on the next round
        trip to Redis (the heartbeat task makes that one at once)."""
        seconds = max(0.0, seconds)
        until = self._link.clock.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
        self.unpublished_pause = max(self.unpublished_pause, seconds)
        if self._fallback is not None:
            self._fallback.pause(seconds)
        self._link.wake.set()

    async def acquire(self) -> None:
        """Wait for this process's next slot, then take it. Never raises for Redis's
        trouble: see ``on_redis_error``."""
        link = self._link
        clock = link.clock
        while True:
            if link.may_call():
                booking = await link.call(self, take=True)
                if booking is not None:
                    wait = max(booking.delay, self._paused_until - clock.monotonic())
                    await clock.sleep(wait)
                    break
            if link.on_redis_error == "wait":
                await clock.sleep(max(0.05, link._retry_at - clock.monotonic()))
                continue
            await self._local().acquire()
            break
        self.acquired += 1
        now = clock.monotonic()
        self._sent.append(now)
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()

    def start_fallback(self) -> None:
        """Redis stopped answering: a local limit at the last known share takes over.

        It starts from this process's own slots of the last window: a process that had
        just spent its share (or more, while others were idle) waits for the window to
        free up, rather than spending a fresh share on top (a burst of 429s otherwise).
        """
        limiter = RateLimiter(
            self.per_minute, burst=self.burst, window=self.window, clock=self._link.clock
        )
        limiter.record(self._sent)
        left = self._paused_until - self._link.clock.monotonic()
        if left > 0:
            limiter.pause(left)
        self._fallback = limiter

    def _local(self) -> RateLimiter:
        if self._fallback is None:
            self.start_fallback()
        assert self._fallback is not None
        return self._fallback
