"""What Python's JSON parser lets in but JSON text cannot carry is a 400, streaming or not, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .conftest import AUTH, FakeUpstream

JSON = {**AUTH, "content-type": "application/json"}
SURROGATE = b'{"messages": [{"role": "user", "content": "\\ud800"}]'
NAN = b'{"messages": [{"role": "user", "content": "x"}], "top_k": NaN'


@pytest.mark.parametrize("stream", [b"false", b"true"])
@pytest.mark.parametrize(("raw", "word"), [(SURROGATE, "surrogate"), (NAN, "NaN")])
def test_unencodable_values_are_400_before_the_upstream(
    client: TestClient, upstream: FakeUpstream, raw: bytes, word: str, stream: bytes
) -> None:
    response = client.post("/v1/chat/completions", content=raw + b', "stream": ' + stream + b"}", headers=JSON)
    assert response.status_code == 400, response.text
    assert word in response.json()["error"]["message"]
    assert not [r for r in upstream.requests if r.url.path.endswith("/completions")]
