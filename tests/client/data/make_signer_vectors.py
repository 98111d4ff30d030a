"""Generate SDK-HMAC-SHA256 test vectors with the official ``huaweicloudsdkcore`` signer.

Run this in a throwaway virtualenv that has ``huaweicloudsdkcore`` installed, e.g.::

    python3 -m venv /tmp/sdkvec
    /tmp/sdkvec/bin/pip install huaweicloudsdkcore
    /tmp/sdkvec/bin/python tests/data/make_signer_vectors.py

It writes ``sdk_signer_vectors.json`` beside itself. The script is NOT part of the test
run (pytest only collects ``test_*.py``) and ``huaweicloudsdkcore`` is not a test dependency;
the tests only read the committed JSON.

Nothing here re-implements the algorithm: every signature comes from
``BasicCredentials.sign_request`` -> ``huaweicloudsdkcore.signer.signer.Signer.sign``, i.e. the
same path the SDK client takes after building an ``SdkRequest``. Two private SDK methods are
wrapped (not replaced) only to *observe* the exact header set, canonical request and
string-to-sign the SDK used; those are recorded for debugging alongside each vector.

Each case records ``url`` as the SDK would put it on the wire: ``schema://host`` + the
already percent-encoded resource path + the query string the SDK rebuilt (sorted,
``quote(safe='~')``-encoded). ``headers`` is exactly the header dict the signer saw when it
computed SignedHeaders (caller headers + X-Project-Id / X-Security-Token added by the
credentials + Host added by the signer), with values as given (before the SDK strips them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from huaweicloudsdkcore.auth.credentials import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    BasicCredentials,
)
from huaweicloudsdkcore.sdk_request import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    SdkRequest,
)
from huaweicloudsdkcore.signer.signer import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
    Signer,
)

OUT_PATH = Path(__file__).with_name("sdk_signer_vectors.json")

# Huawei's published worked example (API Gateway "AK/SK signing" docs).
DOC_AK = "QTWAOYTTINDUT2QVKYUC"
DOC_SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
DOC_EXPECTED_SIGNATURE = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
DOC_EXPECTED_SIGNED_HEADERS = "content-type;host;x-sdk-date"

# Fake temporary credentials for the security-token case.
TMP_AK = "TMPAKEXAMPLE0123456Z"
TMP_SK = "tmpSecretKeyExample0123456789abcdefghijk"
TMP_TOKEN = "gQpjbi1ub3J0aC00iXYZ+example/security==token"

CDM_HOST = "cdm.cn-north-4.myhuaweicloud.com"
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
CLUSTER = "6ec9a0a4-76be-4262-8697-e7af1fac7920"
CLUSTER_PATH = f"/v1.1/{PROJECT}/clusters/{CLUSTER}"
DATE = "20240501T120000Z"
JSON_CT = "application/json"


@dataclass(frozen=True)
class Case:
    """One request to sign."""

    name: str
    method: str
    resource_path: str  # already percent-encoded, as the SDK client builds it
    headers: dict[str, str]
    host: str = CDM_HOST
    query: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    ak: str = DOC_AK
    sk: str = DOC_SK
    project_id: str | None = PROJECT
    security_token: str | None = None


def seg(value: str) -> str:
    """Encode a path parameter exactly like the SDK client (``quote(str(v), safe='')``)."""
    return quote(value, safe="")


def status_path(job_name: str) -> str:
    return f"{CLUSTER_PATH}/cdm/job/{seg(job_name)}/status"


def std_headers(date: str = DATE) -> dict[str, str]:
    return {"X-Sdk-Date": date, "Content-Type": JSON_CT}


def build_cases() -> list[Case]:
    cases: list[Case] = [
        Case(
            name="huawei_doc_example_vpcs_list",
            method="GET",
            host="service.region.example.com",
            resource_path="/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query=[("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")],
            headers={"X-Sdk-Date": "20191115T033655Z", "Content-Type": JSON_CT},
            project_id=None,
        ),
    ]
    job_names = [
        ("cdm_job_status_plain", "jdbc2hive"),
        ("cdm_job_status_space_slash_unicode_percent", "a b/c_ü%"),
        ("cdm_job_status_dotdot_slash", "../x"),
        ("cdm_job_status_literal_percent_2e", "%2e%2e"),
        ("cdm_job_status_question_mark", "?x=1"),
        ("cdm_job_status_hash_fragment", "#frag"),
        ("cdm_job_status_cjk", "表_订单"),
        ("cdm_job_status_tilde_dash_dots", "name~with-tilde.dots"),
        ("cdm_job_status_subjob", "parent_table"),
    ]
    cases += [
        Case(name=n, method="GET", resource_path=status_path(j), headers=std_headers())
        for n, j in job_names
    ]
    cases += [
        Case(
            name="cdm_job_status_security_token",
            method="GET",
            resource_path=status_path("jdbc2hive"),
            headers=std_headers("20240501T120001Z"),
            ak=TMP_AK,
            sk=TMP_SK,
            security_token=TMP_TOKEN,
        ),
        Case(
            name="cdm_job_list_query",
            method="GET",
            resource_path=f"{CLUSTER_PATH}/cdm/job/all",
            query=[
                ("filter", "db1"),
                ("page_no", "1"),
                ("page_size", "100"),
                ("jobType", "BATCH_JOB"),
            ],
            headers=std_headers(),
        ),
        Case(
            name="cdm_job_list_query_special_chars",
            method="GET",
            resource_path=f"{CLUSTER_PATH}/cdm/job/all",
            query=[("filter", "db 1 表+x=y&z~"), ("page_no", "1"), ("page_size", "10")],
            headers=std_headers(),
        ),
        Case(
            name="query_repeated_key_and_empty_value",
            method="GET",
            resource_path=f"{CLUSTER_PATH}/cdm/job/all",
            query=[("tag", "b"), ("tag", "a"), ("empty", "")],
            headers=std_headers(),
        ),
        Case(
            name="cdm_job_start_put_json_body",
            method="PUT",
            resource_path=f"{CLUSTER_PATH}/cdm/job/{seg('jdbc2hive')}/start",
            headers=std_headers(),
            # What the SDK client sends for body {"variables": {}}: json.dumps() default separators.
            body=json.dumps({"variables": {}}),
        ),
        Case(
            name="put_text_plain_unsigned_payload",
            method="PUT",
            resource_path=f"{CLUSTER_PATH}/cdm/job/{seg('jdbc2hive')}/start",
            headers={"X-Sdk-Date": DATE, "Content-Type": "text/plain"},
            body="hello",
        ),
        Case(
            name="header_underscore_unsigned",
            method="GET",
            resource_path=status_path("jdbc2hive"),
            headers={**std_headers(), "X_Custom": "v"},
        ),
        Case(
            name="header_value_surrounding_spaces",
            method="GET",
            resource_path=status_path("jdbc2hive"),
            headers={**std_headers(), "X-Custom-Padded": "  padded  inner  "},
        ),
        Case(
            name="header_names_lowercase",
            method="GET",
            resource_path=status_path("jdbc2hive"),
            headers={"x-sdk-date": DATE, "content-type": JSON_CT},
        ),
        Case(
            name="path_trailing_slash",
            method="GET",
            resource_path=f"{CLUSTER_PATH}/",
            headers=std_headers(),
        ),
        Case(
            name="path_no_trailing_slash",
            method="GET",
            resource_path=CLUSTER_PATH,
            headers=std_headers(),
        ),
        Case(
            name="host_with_port",
            method="GET",
            host="cdm.example.internal:8443",
            resource_path=status_path("jdbc2hive"),
            headers=std_headers(),
        ),
    ]
    return cases


@contextmanager
def observe_signer(seen: dict[str, Any]) -> Iterator[None]:
    """Wrap two Signer internals to record what the SDK computed (behaviour unchanged)."""
    orig_canon: Callable[..., str] = Signer._process_canonical_request
    orig_sign: Callable[..., str] = Signer._sign_string_to_sign

    def canon(self: Any, request: Any, signed_headers: list[str]) -> str:
        seen["headers"] = dict(request.header_params)  # before the SDK strips values
        result = orig_canon(self, request, signed_headers)
        seen["canonical_request"] = result
        return result

    def sign(self: Any, string_to_sign: str, key: Any) -> str:
        seen["string_to_sign"] = string_to_sign
        return orig_sign(self, string_to_sign, key)

    Signer._process_canonical_request = canon
    Signer._sign_string_to_sign = sign
    try:
        yield
    finally:
        Signer._process_canonical_request = orig_canon
        Signer._sign_string_to_sign = orig_sign


def run_case(case: Case) -> dict[str, Any]:
    creds = BasicCredentials(case.ak, case.sk, case.project_id)
    if case.security_token is not None:
        creds.with_security_token(case.security_token)
    request = SdkRequest(
        method=case.method,
        schema="https",
        host=case.host,
        resource_path=case.resource_path,
        query_params=list(case.query),
        header_params=dict(case.headers),
        body=case.body,
    )
    seen: dict[str, Any] = {}
    with observe_signer(seen):
        signed = creds.sign_request(request)  # adds X-Project-Id / X-Security-Token, then signs

    authorization: str = signed.header_params["Authorization"]
    prefix = f"SDK-HMAC-SHA256 Access={case.ak}, SignedHeaders="
    if not authorization.startswith(prefix):
        raise RuntimeError(f"{case.name}: unexpected Authorization {authorization!r}")
    signed_headers, _, signature = authorization[len(prefix) :].partition(", Signature=")

    headers: dict[str, str] = seen["headers"]
    if "Authorization" in headers:
        raise RuntimeError(f"{case.name}: signer saw an Authorization header")
    return {
        "name": case.name,
        "method": case.method,
        "url": signed.url,
        "headers": headers,
        "body": case.body,
        "ak": case.ak,
        "sk": case.sk,
        "authorization": authorization,
        "signed_headers": signed_headers,
        "signature": signature,
        "canonical_request": seen["canonical_request"],
        "string_to_sign": seen["string_to_sign"],
    }


def main() -> None:
    results = [run_case(c) for c in build_cases()]
    doc = results[0]
    if (doc["signature"], doc["signed_headers"]) != (
        DOC_EXPECTED_SIGNATURE,
        DOC_EXPECTED_SIGNED_HEADERS,
    ):
        raise SystemExit(f"SDK does not reproduce Huawei's published example: {doc}")
    names = [r["name"] for r in results]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate case names")
    out = {"sdk_version": version("huaweicloudsdkcore"), "cases": results}
    OUT_PATH.write_text(
        json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(results)} cases to {OUT_PATH}")


if __name__ == "__main__":
    main()
