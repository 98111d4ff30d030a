"""Authentication for httpx: an IAM token, or an AK/SK signature.

Both are ``httpx.Auth`` objects, so they work with any ``httpx.AsyncClient``. Neither ever
shows a secret in its ``repr``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import anyio
import httpx

from ._clock import Clock, LoopClock
from ._errors import _error_fields
from ._signer import (
    CONTENT_SHA256_HEADER,
    DATE_HEADER,
    UNSIGNED_PAYLOAD,
    format_sdk_date,
    needs_unsigned_payload,
    sign,
)

__all__ = ["AKSKAuth", "TokenAuth", "TokenProvider"]

TokenProvider = Callable[[], Awaitable[str]]
"""An async callable returning a current IAM token."""

TOKEN_HEADER = "X-Auth-Token"
SECRET_HEADERS = ("X-Auth-Token", "Authorization", "X-Security-Token")
"""Request headers whose values are secrets: never quoted in an error or a log line."""
MAX_PEEK_BYTES = 64 * 1024
"""Largest 401 body read to look for "token expires" (gateway error bodies are tiny)."""


def check_header_value(value: object, setting: str) -> str:
    """``value`` if it can be sent as an HTTP header value, else ``ValueError``.

    Only visible ASCII is accepted (credentials and ids never hold anything else). The
    error names ``setting`` and never quotes the value: it is usually a secret, and an
    HTTP library that meets it in a header would quote the whole header in its error.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{setting} must be a non-empty string")
    for position, char in enumerate(value):
        if not 0x21 <= ord(char) <= 0x7E:
            kind = "non-ASCII" if ord(char) > 0x7E else "control or space"
            raise ValueError(
                f"{setting} contains a {kind} character (U+{ord(char):04X}) at position "
                f"{position}; only visible ASCII can be sent in a header"
            )
    return value


def _token_expired(response: httpx.Response) -> bool:
    """True for a 401 whose body says the token expired (APIG.0301 "token expires")."""
    if response.status_code != 401:
        return False
    code, message, _ = _error_fields(response.content)
    text = f"{code or ''} {message or ''}".lower()
    return "expire" in text or code == "APIG.0307"


class TokenAuth(httpx.Auth):
    """Sends ``X-Auth-Token``.

    ``token`` is the token itself, or an async callable returning one. With a callable, a
    401 whose body says the token expired makes it ask once for a fresh token and repeat
    the request once. A provider's token may end with one newline (what reading a token
    file gives): it is stripped. Any other control, space or non-ASCII character is
    refused with a ``ValueError`` naming ``setting``, before anything is sent.
    """

    def __init__(self, token: str | TokenProvider, *, setting: str = "token") -> None:
        self._setting = setting
        if isinstance(token, str):
            self._static: str | None = check_header_value(token, setting)
            self._provider: TokenProvider | None = None
        elif callable(token):
            self._static = None
            self._provider = token
        else:
            raise TypeError("token must be a string or an async callable returning one")
        self._current: str | None = self._static
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        kind = "static" if self._static is not None else "provider"
        return f"TokenAuth(<{kind} token hidden>)"

    async def _token(self, *, refresh: bool = False, stale: str | None = None) -> str:
        if self._provider is None:
            assert self._static is not None
            return self._static
        async with self._lock:
            # Another request may have refreshed it while we waited for the lock.
            if self._current is None or (refresh and self._current == stale):
                token = self._provider()
                value = await token if inspect.isawaitable(token) else token
                if not isinstance(value, str):
                    raise TypeError("the token provider must return a string")
                if value.endswith("\n"):
                    value = value[:-2] if value.endswith("\r\n") else value[:-1]
                self._current = check_header_value(
                    value, f"the {self._setting} returned by the token provider"
                )
            return self._current

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        if self._static is None:
            raise RuntimeError("a token provider needs an httpx.AsyncClient")
        request.headers[TOKEN_HEADER] = self._static
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._token()
        request.headers[TOKEN_HEADER] = token
        response = yield request
        if (
            self._provider is not None
            and response.status_code == 401
            and await _peek_body(response)
            and _token_expired(response)
        ):
            request.headers[TOKEN_HEADER] = await self._token(refresh=True, stale=token)
            yield request


async def _peek_body(response: httpx.Response) -> bool:
    """Read a small error body so it can be inspected; False if it is not small.

    This flow overrides ``async_auth_flow``, so httpx's ``requires_response_body`` does not
    apply, and the client streams responses (to cap their size): the body is not read yet.
    Only a body that declares a small length is read; the caller reads it again from memory.
    """
    declared = response.headers.get("content-length", "")
    if not (declared.isdigit() and int(declared) <= MAX_PEEK_BYTES):
        return False
    await response.aread()
    return True


class AKSKAuth(httpx.Auth):
    """Signs each request with ``SDK-HMAC-SHA256``, as Huawei's official SDK does.

    Adds ``X-Sdk-Date`` (unless the request already has one: then that date is signed),
    ``X-Project-Id`` when ``project_id`` is given and ``X-Security-Token`` for temporary
    credentials. Hop-by-hop headers and header names with ``_`` are never signed.
    """

    requires_request_body = True

    def __init__(
        self,
        ak: str,
        sk: str,
        *,
        project_id: str | None = None,
        security_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        check_header_value(ak, "ak")  # it is sent in the Authorization header
        if not isinstance(sk, str) or not sk:
            raise ValueError("sk must be a non-empty string")
        # The SK is never sent, but one with a stray character can never sign correctly.
        check_header_value(sk, "sk")
        if project_id is not None:
            check_header_value(project_id, "project_id")
        if security_token is not None:
            check_header_value(security_token, "security_token")
        self._ak = ak
        self._sk = sk
        self._project_id = project_id
        self._security_token = security_token
        self._clock = clock or LoopClock()

    @property
    def ak(self) -> str:
        """The access key id (not a secret; it is sent in every Authorization header)."""
        return self._ak

    def __repr__(self) -> str:
        temporary = ", temporary" if self._security_token else ""
        return f"AKSKAuth(ak={self._ak[:4]}…, sk=<hidden>{temporary})"

    def sign_request(self, request: httpx.Request) -> None:
        """Add the date, project and signature headers to ``request`` in place."""
        headers = request.headers
        if DATE_HEADER not in headers:
            headers[DATE_HEADER] = format_sdk_date(self._clock.time())
        if self._project_id and "X-Project-Id" not in headers:
            headers["X-Project-Id"] = self._project_id
        if self._security_token:
            headers["X-Security-Token"] = self._security_token
        if needs_unsigned_payload(headers.get("content-type")):
            headers[CONTENT_SHA256_HEADER] = UNSIGNED_PAYLOAD
        raw_path, _, query = request.url.raw_path.decode("ascii").partition("?")
        signature = sign(
            request.method,
            raw_path,
            query,
            headers.multi_items(),
            request.content,
            ak=self._ak,
            sk=self._sk,
        )
        headers["Authorization"] = signature.authorization

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        self.sign_request(request)
        yield request
