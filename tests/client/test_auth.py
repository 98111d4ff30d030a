"""TokenAuth: a static token, or a provider asked again once when the token expired."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from cdm_status import (
    AuthenticationError,
    CDMClient,
    PermissionDeniedError,
    RetryPolicy,
    TokenAuth,
)

BASE = "https://cdm.test"
STATUS_URL = f"{BASE}/v1.1/p/clusters/c/cdm/job/j/status"
OK = httpx.Response(200, json={"submissions": [{"job-name": "j", "status": "RUNNING"}]})
EXPIRED = {
    "error_code": "APIG.0301",
    "error_msg": "Incorrect IAM authentication information: token expires",
    "request_id": "r1",
}
BAD_SIGNATURE = {
    "error_code": "APIG.0301",
    "error_msg": "Incorrect IAM authentication information: verify aksk signature fail",
}


class Provider:
    """An async token provider that hands out tok-1, tok-2, ... and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return f"tok-{self.calls}"


def client(auth: TokenAuth) -> CDMClient:
    return CDMClient(BASE, "p", "c", auth=auth, retry=RetryPolicy.never())


@pytest.mark.anyio
async def test_static_token_is_sent() -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(STATUS_URL).mock(return_value=OK)
        async with client(TokenAuth("static-token")) as api:
            assert (await api.get_status("j")).raw_status == "RUNNING"
    assert route.calls.last.request.headers["X-Auth-Token"] == "static-token"


@pytest.mark.anyio
async def test_static_token_is_not_refreshed_on_expiry() -> None:
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(401, json=EXPIRED))
        async with client(TokenAuth("static-token")) as api:
            with pytest.raises(AuthenticationError):
                await api.get_status("j")
    assert route.call_count == 1


@pytest.mark.anyio
async def test_provider_is_asked_again_once_on_token_expiry() -> None:
    provider = Provider()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(side_effect=[httpx.Response(401, json=EXPIRED), OK, OK])
        async with client(TokenAuth(provider)) as api:
            assert (await api.get_status("j")).raw_status == "RUNNING"
            assert [c.request.headers["X-Auth-Token"] for c in route.calls] == ["tok-1", "tok-2"]
            # The fresh token is kept for the next request.
            await api.get_status("j")
    assert provider.calls == 2
    assert route.calls.last.request.headers["X-Auth-Token"] == "tok-2"


@pytest.mark.anyio
async def test_request_is_repeated_only_once() -> None:
    provider = Provider()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(401, json=EXPIRED))
        async with client(TokenAuth(provider)) as api:
            with pytest.raises(AuthenticationError) as caught:
                await api.get_status("j")
    assert route.call_count == 2
    assert provider.calls == 2
    assert caught.value.error_code == "APIG.0301"
    assert caught.value.request_id == "r1"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401, json=BAD_SIGNATURE), AuthenticationError),
        (httpx.Response(401, content=b"not json"), AuthenticationError),
        (httpx.Response(403, json=EXPIRED), PermissionDeniedError),
    ],
    ids=["other-401", "non-json-401", "403-says-expires"],
)
async def test_provider_is_not_asked_again_on_other_refusals(
    response: httpx.Response, error: type[Exception]
) -> None:
    provider = Provider()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=response)
        async with client(TokenAuth(provider)) as api:
            with pytest.raises(error):
                await api.get_status("j")
    assert route.call_count == 1
    assert provider.calls == 1


@pytest.mark.anyio
async def test_works_with_a_plain_httpx_client_too() -> None:
    provider = Provider()
    with respx.mock:
        respx.get(STATUS_URL).mock(side_effect=[httpx.Response(401, json=EXPIRED), OK])
        async with httpx.AsyncClient(auth=TokenAuth(provider)) as http:
            response = await http.get(STATUS_URL)
    assert response.status_code == 200
    assert json.loads(response.content)["submissions"][0]["status"] == "RUNNING"
    assert provider.calls == 2


def test_sync_client_with_a_static_token() -> None:
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=OK)
        with httpx.Client(auth=TokenAuth("t")) as http:
            http.get(STATUS_URL)
    assert route.calls.last.request.headers["X-Auth-Token"] == "t"


@pytest.mark.parametrize("token", ["", "a\nb", "a\rb", "a\0b"])
def test_bad_static_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token"):
        TokenAuth(token)


def test_repr_hides_the_token() -> None:
    assert "s3cr3t" not in repr(TokenAuth("s3cr3t"))
    assert repr(TokenAuth(Provider())) == "TokenAuth(<provider token hidden>)"
