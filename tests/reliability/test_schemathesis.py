"""Schemathesis over the gateway's own OpenAPI document: thousands of generated requests, no 5xx.

The app is the real one, in-process, in front of a fake vLLM (``tests/gateway/conftest.FakeUpstream``):
what is exercised is the gateway's parsing, validation, constraint normalisation and error
translation. Generated bodies that are valid reach the fake and get its answer; the rest must be
refused with a 4xx, never crash. Positive and negative generation both run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway import Settings, create_app

from ..gateway.conftest import AUTH, KEY, FakeUpstream

APP = create_app(
    Settings(api_keys=[KEY], upstream_url="http://upstream.test", upstream_wait_seconds=0.1),
    transport=httpx.MockTransport(FakeUpstream()),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
#: Requests sent and their statuses, printed at the end of the module (``pytest -s``).
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module", autouse=True)
def lifespan() -> Iterator[None]:
    """The app's lifespan (upstream client, validator) runs for the whole module, as in production."""
    with TestClient(APP):
        yield
    print(f"\nschemathesis: {STATUSES.total()} requests, statuses {dict(sorted(STATUSES.items()))}")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
    STATUSES[response.status_code] += 1


def test_the_document_describes_auth_and_openai_errors() -> None:
    document = APP.openapi()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert "422" not in chat["responses"] and {"400", "401", "429"} <= set(chat["responses"])
    assert chat["security"] == [{"bearerAuth": []}]
    assert "security" not in document["paths"]["/health"]["get"]
    generate = document["paths"]["/generate"]["post"]["responses"]["200"]["content"]["application/json"]
    assert generate["schema"]["$ref"].endswith("/GenerateResponse")
