from fastapi.testclient import TestClient

import grammars

from .conftest import AUTH, FakeUpstream

MAZE_PAYLOAD = {"prompt": "Write a function", "max_tokens": 64, "temperature": 0.2, "language": "python"}


def test_maze_payload_gets_code_and_metadata(client: TestClient, upstream: FakeUpstream) -> None:
    response = client.post("/generate", json=MAZE_PAYLOAD, headers=AUTH)
    assert response.status_code == 200
    data = response.json()
    assert data["success"] is True and data["code"] == "x = 1\n"
    meta = data["metadata"]
    assert meta["tokens_generated"] == meta["tokens"] == 5
    assert meta["finish_reason"] == "stop" and meta["grammar_constrained"] is True
    assert meta["language"] == "python" and meta["model"] == "tiny" and meta["prompt_tokens"] == 7
    sent = upstream.bodies()[-1]
    assert sent["structured_outputs"] == {"grammar": grammars.load("python")}
    assert sent["messages"][-1] == {"role": "user", "content": "Write a function"}
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.2


def test_explicit_grammar_wins_over_language(client: TestClient, upstream: FakeUpstream) -> None:
    grammar = 'start: "pass"'
    response = client.post("/v1/generate", json={**MAZE_PAYLOAD, "grammar": grammar}, headers=AUTH)
    assert response.status_code == 200
    assert upstream.bodies()[-1]["structured_outputs"] == {"grammar": grammar}
    assert response.json()["metadata"]["language"] == "python"


def test_unconstrained_generate_says_so(client: TestClient) -> None:
    data = client.post("/generate", json={"prompt": "hi"}, headers=AUTH).json()
    assert data["metadata"]["grammar_constrained"] is False


def test_maze_errors_carry_success_false(client: TestClient) -> None:
    cases = [
        ({**MAZE_PAYLOAD, "grammar": "start: nope"}, "invalid_grammar"),
        ({**MAZE_PAYLOAD, "language": "cobol"}, "invalid_constraint"),
        ({"max_tokens": 5}, "invalid_request"),
    ]
    for payload, code in cases:
        response = client.post("/generate", json=payload, headers=AUTH)
        assert response.status_code == 400, payload
        body = response.json()
        assert body["success"] is False and body["error"]["code"] == code
    assert client.post("/generate", json=MAZE_PAYLOAD).json()["success"] is False
