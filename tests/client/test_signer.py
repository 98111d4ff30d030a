"""SDK-HMAC-SHA256: byte-identical to huaweicloudsdkcore, proven with its committed vectors.

``tests/client/data/sdk_signer_vectors.json`` was produced by the official SDK's own signer (see
``tests/client/data/make_signer_vectors.py``); nothing here recomputes an expected signature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdm_status import AKSKAuth
from cdm_status._signer import (
    canonical_query,
    canonical_uri,
    format_sdk_date,
    parse_sdk_date,
    query_pairs,
    sign,
)
from cdm_status.testing import FakeClock

VECTORS_FILE = Path(__file__).parent / "data" / "sdk_signer_vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["cases"]
IDS = [case["name"] for case in VECTORS]


def test_all_vectors_are_present() -> None:
    assert len(VECTORS) == 22
    assert VECTORS[0]["name"] == "huawei_doc_example_vpcs_list"


def sign_vector(case: dict[str, Any], **extra: Any) -> Any:
    url = httpx.URL(case["url"])
    raw_path, _, query = url.raw_path.decode("ascii").partition("?")
    return sign(
        case["method"],
        raw_path,
        query,
        list(case["headers"].items()) + list(extra.items()),
        case["body"].encode("utf-8"),
        ak=case["ak"],
        sk=case["sk"],
    )


@pytest.mark.parametrize("case", VECTORS, ids=IDS)
def test_pure_sign_reproduces_the_sdk(case: dict[str, Any]) -> None:
    signature = sign_vector(case)
    assert signature.canonical_request == case["canonical_request"]
    assert signature.signed_headers == case["signed_headers"]
    assert signature.signature == case["signature"]
    assert signature.authorization == case["authorization"]


def test_huaweis_published_worked_example() -> None:
    [case] = [c for c in VECTORS if c["name"] == "huawei_doc_example_vpcs_list"]
    signature = sign_vector(case)
    assert signature.signed_headers == "content-type;host;x-sdk-date"
    assert signature.signature == (
        "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


def request_from_vector(case: dict[str, Any]) -> httpx.Request:
    """The vector's request as httpx builds it, with the header set the SDK signed.

    ``httpx.Request`` keeps the vector's Host (it only adds one when missing), but it adds
    ``Content-Length`` for a body. The SDK signed its header dict *before* its transport
    (requests) added Content-Length, so the vector does not cover it; drop it here so both
    sides sign the same header set. (A client adds Accept, User-Agent etc. too; those come
    from ``httpx.AsyncClient``, not from ``httpx.Request``, so they are not in play here.)
    """
    request = httpx.Request(
        case["method"],
        case["url"],
        headers=case["headers"],
        content=case["body"].encode("utf-8"),
    )
    if "Content-Length" not in case["headers"]:
        request.headers.pop("Content-Length", None)
    assert {name.lower() for name in request.headers} == {name.lower() for name in case["headers"]}
    return request


@pytest.mark.parametrize("case", VECTORS, ids=IDS)
def test_aksk_auth_on_a_real_request_reproduces_the_sdk(case: dict[str, Any]) -> None:
    request = request_from_vector(case)
    # The X-Sdk-Date the vector carries must be the one signed, not the clock's date.
    auth = AKSKAuth(case["ak"], case["sk"], clock=FakeClock(start=0.0))
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    assert signed.headers["Authorization"] == case["authorization"]
    assert signed.headers["X-Sdk-Date"] == case["headers"].get(
        "X-Sdk-Date", case["headers"].get("x-sdk-date")
    )


def test_aksk_auth_adds_the_date_project_and_security_token() -> None:
    [case] = [c for c in VECTORS if c["name"] == "cdm_job_status_security_token"]
    clock = FakeClock(start=parse_sdk_date(case["headers"]["X-Sdk-Date"]))
    # The same request without the headers the credentials add: AKSKAuth must add them.
    headers = {"Content-Type": case["headers"]["Content-Type"]}
    request = httpx.Request("GET", case["url"], headers=headers)
    auth = AKSKAuth(
        case["ak"],
        case["sk"],
        project_id=case["headers"]["X-Project-Id"],
        security_token=case["headers"]["X-Security-Token"],
        clock=clock,
    )
    signed = next(auth.sync_auth_flow(request))
    assert signed.headers["X-Sdk-Date"] == case["headers"]["X-Sdk-Date"]
    assert signed.headers["X-Project-Id"] == case["headers"]["X-Project-Id"]
    assert signed.headers["X-Security-Token"] == case["headers"]["X-Security-Token"]
    assert signed.headers["Authorization"] == case["authorization"]


def test_aksk_auth_marks_a_non_json_body_unsigned() -> None:
    [case] = [c for c in VECTORS if c["name"] == "put_text_plain_unsigned_payload"]
    headers = {k: v for k, v in case["headers"].items() if k != "X-Sdk-Content-Sha256"}
    request = httpx.Request("PUT", case["url"], headers=headers, content=b"hello")
    request.headers.pop("Content-Length")  # see request_from_vector
    signed = next(AKSKAuth(case["ak"], case["sk"]).sync_auth_flow(request))
    assert signed.headers["X-Sdk-Content-Sha256"] == "UNSIGNED-PAYLOAD"
    assert signed.headers["Authorization"] == case["authorization"]


# --------------------------------------------------------------------------- hop-by-hop

HOP_BY_HOP = {
    "Connection": "keep-alive",
    "Keep-Alive": "timeout=5",
    "Transfer-Encoding": "chunked",
    "TE": "trailers",
    "Upgrade": "h2c",
    "Proxy-Authorization": "Basic eDp5",
    "Proxy-Connection": "keep-alive",
    "Proxy-Anything": "x",
}


@pytest.mark.parametrize("name", list(HOP_BY_HOP))
def test_hop_by_hop_headers_are_never_signed(name: str) -> None:
    case = VECTORS[1]
    signature = sign_vector(case, **{name: HOP_BY_HOP[name]})
    assert name.lower() not in signature.signed_headers.split(";")
    assert signature.authorization == case["authorization"]


def test_hop_by_hop_headers_on_a_real_request_are_not_signed() -> None:
    case = VECTORS[1]
    request = request_from_vector(case)
    request.headers.update(HOP_BY_HOP)
    signed = next(AKSKAuth(case["ak"], case["sk"]).sync_auth_flow(request))
    assert signed.headers["Authorization"] == case["authorization"]


def test_a_header_that_is_not_hop_by_hop_is_signed() -> None:
    # The counterpart of the tests above: an ordinary extra header changes the signature.
    case = VECTORS[1]
    signature = sign_vector(case, **{"X-Extra": "1"})
    assert "x-extra" in signature.signed_headers.split(";")
    assert signature.authorization != case["authorization"]


def test_signing_needs_a_date() -> None:
    with pytest.raises(ValueError, match="X-Sdk-Date"):
        sign("GET", "/", "", [("Host", "h")], b"", ak="a", sk="s")


def test_only_restricts_the_signed_headers() -> None:
    # A verifier passes the list the request declared: extra headers then do not count.
    case = VECTORS[1]
    restricted = sign(
        "GET",
        httpx.URL(case["url"]).raw_path.decode(),
        "",
        [*list(case["headers"].items()), ("X-Extra", "1")],
        b"",
        ak=case["ak"],
        sk=case["sk"],
        only=case["signed_headers"].split(";"),
    )
    assert restricted.authorization == case["authorization"]


# --------------------------------------------------------------------------- pieces


def test_canonical_uri_pieces() -> None:
    assert canonical_uri("/v1/a%20b") == "/v1/a%20b/"
    assert canonical_uri("/v1/x/") == "/v1/x/"
    assert canonical_uri("/v1/%7Etilde") == "/v1/~tilde/"


def test_canonical_query_pieces() -> None:
    pairs = query_pairs("b=2&a=x%20y&a=1&empty=")
    assert pairs == [("b", "2"), ("a", "x y"), ("a", "1"), ("empty", "")]
    assert canonical_query(pairs) == "a=1&a=x%20y&b=2&empty="


def test_sdk_date_round_trip() -> None:
    assert format_sdk_date(1_573_789_015.0) == "20191115T033655Z"
    assert parse_sdk_date("20191115T033655Z") == 1_573_789_015.0
    with pytest.raises(ValueError):  # noqa: PT011 - strptime's own message
        parse_sdk_date("2019-11-15")


def test_aksk_auth_dates_from_its_clock() -> None:
    request = httpx.Request("GET", "https://h/v1/x")
    auth = AKSKAuth("AK", "SK", clock=FakeClock(start=1_573_789_015.0))
    signed = next(auth.sync_auth_flow(request))
    assert signed.headers["X-Sdk-Date"] == "20191115T033655Z"
    assert signed.headers["Authorization"].startswith(
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature="
    )


# --------------------------------------------------------------------------- secrets


def test_reprs_never_show_secrets() -> None:
    from cdm_status import TokenAuth

    sk = "SK-very-secret-value"
    token = "TOKEN-very-secret-value"
    texts = [
        repr(AKSKAuth("AKIDEXAMPLE", sk)),
        repr(AKSKAuth("AKIDEXAMPLE", sk, security_token=token)),
        str(AKSKAuth("AKIDEXAMPLE", sk)),
        repr(TokenAuth(token)),
        str(TokenAuth(token)),
    ]
    for text in texts:
        assert sk not in text
        assert token not in text
        assert "secret" not in text


def test_signature_repr_is_short() -> None:
    signature = sign_vector(VECTORS[0])
    assert signature.signature not in repr(signature)


@pytest.mark.parametrize(("ak", "sk"), [("", "s"), ("a", ""), (None, "s")])
def test_aksk_needs_both_keys(ak: Any, sk: Any) -> None:
    with pytest.raises(ValueError, match="must be a non-empty string"):
        AKSKAuth(ak, sk)
