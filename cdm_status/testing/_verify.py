"""The gateway's credential check: an IAM token, or an ``SDK-HMAC-SHA256`` signature.

The signature is recomputed with the library's signer over exactly what arrived (method,
raw path, query, the headers the request says it signed, body). Reusing the signer is
safe: it is pinned by vectors taken from Huawei's official SDK, not by this simulator.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field

from .._clock import Clock
from .._signer import ALGORITHM, DATE_HEADER, parse_sdk_date, sign

__all__ = ["SimulatorAuth", "verify"]

MAX_SKEW = 15 * 60.0
"""The gateway refuses a signature dated more than 15 minutes off its clock."""

_AUTHORIZATION = re.compile(
    rf"^{ALGORITHM}\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-fA-F]+)$"
)


@dataclass(frozen=True, slots=True)
class SimulatorAuth:
    """Credentials the simulator accepts: a token (``X-Auth-Token``), an AK/SK pair, or
    both. A request without them is answered 401 ``APIG.0301``, as the gateway does.
    ``CDMSimulator.client()`` sends them.

    Raises:
        ValueError: An AK without an SK (or the reverse), or no credentials at all.
    """

    token: str | None = None
    """The IAM token accepted in ``X-Auth-Token``."""
    ak: str | None = None
    """The access key of the AK/SK pair."""
    sk: str | None = field(default=None, repr=False)
    """The secret key: the ``SDK-HMAC-SHA256`` signature is checked with it."""
    clock: Clock | None = field(default=None, compare=False)
    """Dates signatures (default: the simulator's gateway clock)."""
    max_skew: float = MAX_SKEW
    """Seconds a signature's date may be off the clock (the gateway's 15 minutes)."""

    def __post_init__(self) -> None:
        if (self.ak is None) != (self.sk is None):
            raise ValueError("ak and sk go together")
        if self.token is None and self.ak is None:
            raise ValueError("give a token, an ak/sk pair, or both")

    def __repr__(self) -> str:
        kinds = [k for k, v in (("token", self.token), ("aksk", self.ak)) if v is not None]
        return f"SimulatorAuth({'+'.join(kinds)})"


def verify(
    auth: SimulatorAuth,
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    now: float,
) -> str | None:
    """None if the request is authenticated; else why not (for ``APIG.0301``)."""
    lowered = {name.lower(): value for name, value in headers}
    token = lowered.get("x-auth-token")
    if token is not None:
        if auth.token is not None and hmac.compare_digest(token, auth.token):
            return None
        return "the token is invalid or has expired"
    authorization = lowered.get("authorization")
    if authorization is None:
        return "no X-Auth-Token or Authorization header"
    if auth.ak is None or auth.sk is None:
        return "AK/SK authentication is not enabled"
    match = _AUTHORIZATION.match(authorization.strip())
    if match is None:
        return "the Authorization header is malformed"
    ak, signed_list, signature = match.groups()
    if ak != auth.ak:
        return "the access key does not exist"
    declared = signed_list.split(";")
    for required in ("host", DATE_HEADER.lower()):
        if required not in declared:
            return f"the signed headers must include {required}"
    try:
        dated = parse_sdk_date(lowered.get(DATE_HEADER.lower(), ""))
    except ValueError:
        return f"the {DATE_HEADER} header is missing or malformed"
    if abs(dated - now) > auth.max_skew:
        return "the request date is more than 15 minutes off the server time"
    try:
        expected = sign(method, raw_path, query, headers, body, ak=ak, sk=auth.sk, only=declared)
    except ValueError:
        return "verify aksk signature fail"
    if expected.signed_headers != signed_list or not hmac.compare_digest(
        expected.signature, signature.lower()
    ):
        return "verify aksk signature fail"
    return None
