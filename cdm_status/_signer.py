"""The API gateway's ``SDK-HMAC-SHA256`` signature, as ``huaweicloudsdkcore`` computes it.

Pure functions only: :func:`sign` takes a method, the wire path and query, the headers and
the body, and returns the ``Authorization`` value. The steps (see the official SDK):

1. signed headers: every header whose name has no ``_``, lower-cased and sorted, except the
   hop-by-hop ones that a proxy may drop or rewrite;
2. canonical headers: ``name:value.strip()`` per signed header, each line ending in ``\\n``;
3. canonical URI: the path unquoted, split on ``/``, each part ``quote(part, safe='~')``,
   rejoined, with a ``/`` appended (the wire path keeps no trailing slash);
4. canonical query: the ``(key, value)`` pairs sorted, each ``quote(..., safe='~')``;
5. canonical request: method, URI, query, headers, signed-header list, body hash, one per
   line (the body hash is ``UNSIGNED-PAYLOAD`` for a non-JSON body, as the SDK does);
6. string to sign: ``SDK-HMAC-SHA256``, the ``X-Sdk-Date`` value and the request's hash;
7. the signature is ``hex(hmac_sha256(sk, string_to_sign))``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, unquote

__all__ = [
    "ALGORITHM",
    "DATE_HEADER",
    "Signature",
    "canonical_query",
    "canonical_uri",
    "format_sdk_date",
    "is_hop_by_hop",
    "parse_sdk_date",
    "sign",
]

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

# Never signed: a proxy may drop or rewrite them, which would break the signature. Every
# ``Proxy-*`` header is in the same case (see ``is_hop_by_hop``).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def is_hop_by_hop(name: str) -> bool:
    """True for a header that one hop may drop or rewrite (``name`` lower-cased)."""
    return name in HOP_BY_HOP or name.startswith("proxy-")


@dataclass(frozen=True, slots=True)
class Signature:
    """The result of signing: the header value and the pieces it was made from."""

    authorization: str
    signed_headers: str
    signature: str
    canonical_request: str

    def __repr__(self) -> str:  # the canonical request is harmless, but keep reprs short
        return f"Signature(signed_headers={self.signed_headers!r})"


def format_sdk_date(epoch_seconds: float) -> str:
    """``YYYYMMDDTHHMMSSZ`` in UTC, the ``X-Sdk-Date`` format."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime(_DATE_FORMAT)


def parse_sdk_date(value: str) -> float:
    """Epoch seconds of an ``X-Sdk-Date`` value; ``ValueError`` if it is not one."""
    moment = datetime.strptime(value.strip(), _DATE_FORMAT).replace(tzinfo=timezone.utc)
    return moment.timestamp()


def canonical_uri(path: str) -> str:
    """Step 3: unquote, split on ``/``, re-quote each part with ``safe='~'``, end with ``/``."""
    parts = unquote(path).split("/")
    uri = "/".join(quote(part, safe="~") for part in parts)
    return uri if uri.endswith("/") else uri + "/"


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``(key, value)`` pairs of a wire query string, percent-decoded."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Step 4: pairs sorted by key then value, both quoted with ``safe='~'``."""
    return "&".join(
        f"{quote(key, safe='~')}={quote(value, safe='~')}" for key, value in sorted(pairs)
    )


def _body_hash(headers: dict[str, str], body: bytes) -> str:
    if headers.get(CONTENT_SHA256_HEADER.lower()) == UNSIGNED_PAYLOAD:
        return UNSIGNED_PAYLOAD
    return hashlib.sha256(body).hexdigest()


def needs_unsigned_payload(content_type: str | None) -> bool:
    """True when the SDK would sign the body as ``UNSIGNED-PAYLOAD`` (non-JSON content)."""
    if not content_type:
        return False
    lowered = content_type.lower()
    return not (lowered.startswith("application/json") or lowered.startswith("application/bson"))


def sign(
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    ak: str,
    sk: str,
    only: Iterable[str] | None = None,
) -> Signature:
    """Sign one request. ``headers`` must include ``Host`` and ``X-Sdk-Date``.

    ``path`` and ``query`` are as they go on the wire (percent-encoded, no ``?``). ``only``
    restricts signing to the named headers (a verifier passes the list the request declared).
    """
    wanted = None if only is None else {name.lower() for name in only}
    signed: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if "_" in lowered or is_hop_by_hop(lowered):
            continue
        if wanted is not None and lowered not in wanted:
            continue
        signed[lowered] = value.strip()
    if DATE_HEADER.lower() not in signed:
        raise ValueError(f"a signed request needs the {DATE_HEADER} header")
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_pairs(query)),
            canonical_headers,
            signed_headers,
            _body_hash(signed, body),
        ]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            signed[DATE_HEADER.lower()],
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    signature = hmac.new(
        sk.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    return Signature(
        authorization=(
            f"{ALGORITHM} Access={ak}, SignedHeaders={signed_headers}, Signature={signature}"
        ),
        signed_headers=signed_headers,
        signature=signature,
        canonical_request=canonical_request,
    )
