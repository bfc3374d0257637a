"""Bad input through every public route of the real stack (gateway + CPU vLLM): never a 5xx.

Each case must be refused with a 4xx and an OpenAI-shaped body whose message names what to fix, and a
valid request on the same route must succeed right after it: a bad request never leaves the gateway
or vLLM worse off. ``test_the_table_is_big_enough`` keeps the table from shrinking unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ..conftest import Stack
from ..e2e.grammar_match import ARITH

MSG = [{"role": "user", "content": "Say something."}]
#: ~5,000 tokens with the Qwen2.5 tokenizer: over the cpu-tiny profile's 4,096-token context.
OVER_CONTEXT = "word " * 5000
HUGE_GRAMMAR = "start: A\nA: " + " | ".join(f'"w{i:06d}"' for i in range(100_000))  # ~1.1 MB
PATHOLOGICAL = "start: /(a{1000}){1000}/"


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Any = None
    """JSON body; ignored when ``raw`` is set."""
    raw: bytes | None = None
    status: int = 400
    words: tuple[str, ...] = ()
    """Words the error message must contain (case-insensitive): what to fix."""
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": MSG, "max_tokens": 4, **fields}


def completion(**fields: Any) -> dict[str, Any]:
    return {"prompt": "1 + 1 =", "max_tokens": 4, **fields}


def generate(**fields: Any) -> dict[str, Any]:
    return {"prompt": "Add two numbers.", "max_tokens": 4, **fields}


C, P, G, B = "/v1/chat/completions", "/v1/completions", "/generate", "/generate/batch"

# fmt: off
CASES = [
    # --- /v1/chat/completions -------------------------------------------------------------------
    Case("chat-malformed-json", C, raw=b'{"messages": [', words=("not valid json",)),
    Case("chat-body-is-a-list", C, raw=b"[1, 2]", words=("json object",)),
    Case("chat-body-is-text-plain", C, raw=b"hello", headers={"content-type": "text/plain"}, words=("json object",)),
    Case("chat-empty-body", C, raw=b"", words=("body", "required")),
    Case("chat-missing-messages", C, {"max_tokens": 4}, words=("messages", "required")),
    Case("chat-messages-wrong-type", C, {"messages": "hi"}, words=("messages", "list")),
    Case("chat-messages-empty", C, {"messages": []}, words=("messages", "at least 1")),
    Case("chat-message-not-an-object", C, {"messages": ["hi"]}, words=("messages.0", "dictionary")),
    Case("chat-unknown-model", C, chat(model="gpt-17"), status=404, words=("gpt-17", "does not exist")),
    Case("chat-unknown-model-stream", C, chat(model="gpt-17", stream=True), status=404, words=("does not exist",)),
    Case("chat-max-tokens-zero", C, chat(max_tokens=0), words=("max_tokens", "greater than or equal to 1")),
    Case("chat-max-tokens-negative-stream", C, chat(max_tokens=-5, stream=True), words=("max_tokens",)),
    Case("chat-max-tokens-string", C, chat(max_tokens="ten"), words=("max_tokens", "integer")),
    Case("chat-max-tokens-absurd", C, chat(max_tokens=10**9), words=("max_tokens", "max_model_len")),
    Case("chat-max-tokens-absurd-stream", C, chat(max_tokens=10**9, stream=True), words=("max_tokens",)),
    Case("chat-max-tokens-5000-digits", C, raw=b'{"messages": [], "max_tokens": ' + b"9" * 5000 + b"}",
         words=("4300 digits",)),
    Case("chat-temperature-negative", C, chat(temperature=-1), words=("temperature", "greater than or equal to 0")),
    Case("chat-temperature-string-stream", C, chat(temperature="hot", stream=True), words=("temperature",)),
    Case("chat-top-p-zero", C, chat(top_p=0), words=("top_p",)),
    Case("chat-n-absurd", C, chat(n=1000), words=("n", "less than or equal to 16")),
    Case("chat-stream-not-bool", C, chat(stream=[1]), words=("stream", "boolean")),
    Case("chat-prompt-over-context", C, {"messages": [{"role": "user", "content": OVER_CONTEXT}], "max_tokens": 4},
         words=("maximum context length", "reduce the length")),
    Case("chat-prompt-over-context-stream", C,
         {"messages": [{"role": "user", "content": OVER_CONTEXT}], "max_tokens": 4, "stream": True},
         words=("maximum context length",)),
    Case("chat-invalid-grammar", C, chat(structured_outputs={"grammar": "start: foo"}), words=("grammar error",)),
    Case("chat-invalid-grammar-stream", C, chat(stream=True, structured_outputs={"grammar": "start: foo"}),
         words=("grammar error",)),
    Case("chat-empty-grammar", C, chat(structured_outputs={"grammar": ""}), words=("grammar", "non-empty")),
    Case("chat-1mb-grammar", C, chat(structured_outputs={"grammar": HUGE_GRAMMAR}),
         words=("bytes", "MAZE_MAX_GRAMMAR_BYTES")),
    Case("chat-pathological-regex-grammar", C, chat(structured_outputs={"grammar": PATHOLOGICAL}),
         words=("(a{1000}){1000}", "MAZE_MAX_REGEX_SIZE")),
    Case("chat-pathological-regex-stream", C, chat(stream=True, structured_outputs={"regex": "(a{1000}){1000}"}),
         words=("MAZE_MAX_REGEX_SIZE",)),
    Case("chat-two-constraints", C, chat(structured_outputs={"grammar": ARITH, "regex": "[0-9]+"}),
         words=("one constraint", "keep one")),
    Case("chat-legacy-and-new-constraint", C, chat(guided_regex="[0-9]+", structured_outputs={"grammar": ARITH}),
         words=("one constraint", "guided_regex")),
    Case("chat-language-and-grammar", C, chat(language="python", structured_outputs={"grammar": ARITH}),
         words=("one constraint",)),
    Case("chat-unknown-language", C, chat(language="cobol"), words=("unknown language", "cobol", "python")),
    Case("chat-structured-outputs-not-object", C, chat(structured_outputs="grammar"),
         words=("structured_outputs", "dictionary")),
    Case("chat-invalid-json-schema", C, chat(response_format={"type": "json_schema", "json_schema": {}}),
         words=("schema", "required")),
    Case("chat-non-utf8-bytes", C, raw=b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}',
         words=("utf-8", "0xff")),
    Case("chat-lone-surrogate", C, raw=b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
         words=("surrogate", "utf-8")),
    Case("chat-nan-in-passthrough-field", C, raw=b'{"messages": [{"role": "user", "content": "x"}], "top_k": NaN}',
         words=("nan", "finite")),
    Case("chat-lone-surrogate-stream", C,
         raw=b'{"messages": [{"role": "user", "content": "\\udc00"}], "stream": true}', words=("surrogate",)),
    Case("chat-infinity-stream", C,
         raw=b'{"messages": [{"role": "user", "content": "x"}], "stream": true, "min_p": Infinity}',
         words=("infinity", "finite")),
    Case("chat-deeply-nested-json", C, raw=b"[" * 100_000 + b"]" * 100_000, words=("nested too deeply",)),
    Case("chat-huge-header", C, chat(), status=431, headers={"x-junk": "a" * 100_000},
         words=("MAZE_MAX_HEADER_BYTES",)),
    Case("chat-body-over-limit", C, raw=b'{"messages": "' + b"a" * 2_100_000 + b'"}', status=413,
         words=("MAZE_MAX_BODY_BYTES",)),
    Case("chat-get-not-allowed", C, method="GET", status=405, words=("method get", "not allowed")),
    # --- /v1/completions ------------------------------------------------------------------------
    Case("completions-missing-prompt", P, {"max_tokens": 4}, words=("prompt", "required")),
    Case("completions-empty-prompt", P, completion(prompt=""), words=("prompt", "at least 1")),
    Case("completions-prompt-wrong-type", P, completion(prompt=5), words=("prompt", "string")),
    Case("completions-prompt-over-context", P, completion(prompt=OVER_CONTEXT), words=("maximum context length",)),
    Case("completions-prompt-over-context-stream", P, completion(prompt=OVER_CONTEXT, stream=True),
         words=("maximum context length",)),
    Case("completions-logprobs-absurd", P, completion(logprobs=10_000), words=("logprobs",)),
    Case("completions-invalid-legacy-regex", P, completion(guided_regex="(unclosed"), words=("grammar error",)),
    Case("completions-guided-choice-empty", P, completion(guided_choice=[]), words=("guided_choice", "non-empty")),
    Case("completions-two-legacy-fields", P, completion(guided_regex="[0-9]+", guided_choice=["a"]),
         words=("one constraint",)),
    # --- /generate and /v1/generate (Maze) ------------------------------------------------------
    Case("generate-malformed-json", G, raw=b'{"prompt": "x",}', words=("not valid json",)),
    Case("generate-missing-prompt", G, {"max_tokens": 4}, words=("prompt", "required")),
    Case("generate-empty-prompt", G, generate(prompt=""), words=("prompt", "at least 1")),
    Case("generate-prompt-not-a-string", G, generate(prompt=["a"]), words=("prompt", "string")),
    Case("generate-prompt-over-context", G, generate(prompt=OVER_CONTEXT), words=("maximum context length",)),
    Case("generate-max-tokens-zero", G, generate(max_tokens=0), words=("max_tokens",)),
    Case("generate-max-tokens-absurd", G, generate(max_tokens=10**9), words=("max_tokens", "max_model_len")),
    Case("generate-temperature-negative", G, generate(temperature=-0.5), words=("temperature",)),
    Case("generate-invalid-grammar", G, generate(grammar="start: ("), words=("grammar error",)),
    Case("generate-empty-grammar", G, generate(grammar=""), words=("grammar", "non-empty")),
    Case("generate-1mb-grammar", G, generate(grammar=HUGE_GRAMMAR), words=("MAZE_MAX_GRAMMAR_BYTES",)),
    Case("generate-pathological-regex", G, generate(grammar=PATHOLOGICAL), words=("MAZE_MAX_REGEX_SIZE",)),
    Case("generate-grammar-and-json-schema", G, generate(grammar=ARITH, json_schema={"type": "string"}),
         words=("either grammar or json_schema",)),
    Case("generate-unknown-language", G, generate(language="klingon"), words=("unknown language", "available")),
    Case("generate-json-schema-not-object", G, generate(json_schema="string"), words=("json_schema",)),
    Case("generate-lone-surrogate", G, raw=b'{"prompt": "\\udfff"}', words=("prompt", "unicode")),
    Case("generate-non-utf8", "/v1/generate", raw=b'{"prompt": "\xc3\x28"}', words=("utf-8",)),
    Case("v1-generate-wrong-types", "/v1/generate", {"prompt": 1, "max_tokens": "x"}, words=("prompt", "max_tokens")),
    # --- /generate/batch ------------------------------------------------------------------------
    Case("batch-missing-requests", B, {}, words=("requests", "required")),
    Case("batch-empty", B, {"requests": []}, words=("requests", "at least 1")),
    Case("batch-requests-not-a-list", B, {"requests": {"prompt": "x"}}, words=("requests", "list")),
    Case("batch-item-not-an-object", B, {"requests": [1]}, words=("requests.0", "dictionary")),
    Case("batch-too-large", B, {"requests": [generate()] * 65}, words=("MAZE_MAX_BATCH_SIZE", "65")),
    Case("batch-max-concurrency-zero", B, {"requests": [generate()], "max_concurrency": 0},
         words=("max_concurrency",)),
    Case("v1-batch-malformed-json", "/v1/generate/batch", raw=b"{requests}", words=("not valid json",)),
    # --- /grammars/{name} -----------------------------------------------------------------------
    Case("grammar-unknown", "/grammars/cobol", method="GET", status=404, words=("unknown grammar", "python")),
    Case("grammar-path-traversal", "/grammars/..%2f..%2fetc%2fpasswd", method="GET", status=404),
    Case("grammar-name-non-utf8", "/grammars/%ff%fe", method="GET", status=404, words=("unknown grammar",)),
    Case("grammar-post-not-allowed", "/grammars/python", method="POST", status=405, words=("not allowed",)),
    Case("unknown-route", "/v1/embeddings", raw=b"{}", status=404, words=("no route",)),
]
# fmt: on

#: A valid request per route family, sent after every case: it must succeed.
VALID: dict[str, tuple[str, str, Any]] = {
    C: ("POST", C, chat(temperature=0, seed=1)),
    P: ("POST", P, completion(temperature=0, seed=1)),
    G: ("POST", G, generate(grammar=ARITH, temperature=0, seed=1)),
    "/v1/generate": ("POST", "/v1/generate", generate(grammar=ARITH, temperature=0, seed=1)),
    B: ("POST", B, {"requests": [generate(grammar=ARITH, seed=1)]}),
    "/v1/generate/batch": ("POST", "/v1/generate/batch", {"requests": [generate(seed=2)]}),
    "/grammars": ("GET", "/grammars/python", None),
    "/v1/embeddings": ("POST", C, chat(seed=3)),
}


def family(path: str) -> str:
    return "/grammars" if path.startswith("/grammars/") else path


def send(client: httpx.Client, stack: Stack, case: Case) -> httpx.Response:
    headers = {**stack.headers, **case.headers}
    if case.raw is not None:
        headers.setdefault("content-type", "application/json")
        return client.request(case.method, case.path, content=case.raw, headers=headers)
    if case.body is None:
        return client.request(case.method, case.path, headers=headers)
    return client.request(case.method, case.path, json=case.body, headers=headers)


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=120) as http:
        yield http


def server_errors(client: httpx.Client, stack: Stack) -> int:
    """Responses with a 5xx status the gateway has counted (``maze_requests_total``)."""
    text = client.get("/metrics", headers=stack.headers).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("maze_requests_total{") and 'status="5' in line
    )


@pytest.fixture(scope="module", autouse=True)
def server_errors_before(client: httpx.Client, stack: Stack) -> int:
    return server_errors(client, stack)


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)
    routes = {family(case.path) for case in CASES}
    assert {C, P, G, "/v1/generate", B, "/v1/generate/batch", "/grammars"} <= routes
    assert sum(1 for case in CASES if isinstance(case.body, dict) and case.body.get("stream")) >= 8


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_a_clear_4xx_and_the_next_request_succeeds(client: httpx.Client, stack: Stack, case: Case) -> None:
    response = send(client, stack, case)
    assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json"), "errors are JSON, never an SSE stream"
    body = response.json()
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"]
    for word in case.words:
        assert word.lower() in error["message"].lower(), f"{word!r} not in {error['message']!r}"
    assert stack.api_key not in response.text
    if family(case.path) in (G, "/v1/generate", B, "/v1/generate/batch"):
        assert body["success"] is False

    method, path, valid = VALID[family(case.path)]
    after = client.request(method, path, json=valid, headers=stack.headers)
    assert after.status_code == 200, after.text[:500]
    if path in (G, "/v1/generate"):
        assert after.json()["success"] is True


def test_a_bad_batch_item_fails_alone(client: httpx.Client, stack: Stack) -> None:
    items = [generate(grammar=ARITH, seed=1), generate(grammar="start: ("), generate(prompt=""), generate(seed=2)]
    response = client.post(B, json={"requests": items}, headers=stack.headers)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["success"] for r in results] == [True, False, False, True]
    assert "grammar error" in results[1]["error"]["message"].lower()
    assert "prompt" in results[2]["error"]["message"]


def test_no_5xx_was_counted(client: httpx.Client, stack: Stack, server_errors_before: int) -> None:
    """The gateway's own metrics agree: while this module ran, nothing answered with a 5xx."""
    assert server_errors(client, stack) == server_errors_before
