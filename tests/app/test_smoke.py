"""app.smoke: the deployment smoke test, run here against the real local stack (CPU vLLM + gateway)."""

from __future__ import annotations

import httpx
import pytest

import grammars
from app.smoke import SmokeError, SmokeResult, check_output, format_table, run_requests, run_smoke, wait_ready


def test_a_finished_output_must_be_a_whole_sentence_of_the_grammar() -> None:
    python = grammars.load("python")
    assert check_output(python, "def f(x):\n    return x\n", "stop") == (True, "complete")
    valid, verdict = check_output(python, "def f(", "stop")
    assert not valid and "ended before the grammar was complete" in verdict


def test_an_output_cut_by_max_tokens_only_has_to_be_a_valid_prefix() -> None:
    assert check_output(grammars.load("python"), "def f(", "length") == (True, "valid prefix")
    assert check_output(grammars.load("json"), '{"a": [1, ', "length") == (True, "valid prefix")
    valid, verdict = check_output(grammars.load("python"), "print(1) = = ", "length")
    assert not valid and verdict.startswith("rejected at 1:11")


def scripted(*statuses: int) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose /ready answers the given statuses in turn (then keeps the last one)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses[min(len(seen), len(statuses)) - 1]
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_wait_ready_polls_through_a_cold_start_with_progress_lines() -> None:
    client, seen = scripted(0, 503, 503, 200)
    lines: list[str] = []
    wait_ready("http://x", "k", 60, progress=lines.append, progress_every_s=0, poll_s=0, client=client)
    assert len(seen) == 4 and seen[0].headers["Authorization"] == "Bearer k"
    assert "ConnectError" in lines[0] and "HTTP 503" in lines[1]
    assert lines[-1].startswith("ready after")


def test_wait_ready_gives_up_at_once_on_a_refused_key_and_at_the_deadline() -> None:
    client, seen = scripted(401)
    with pytest.raises(SmokeError, match="refused the API key"):
        wait_ready("http://x", "bad", 60, progress=lambda _: None, poll_s=0, client=client)
    assert len(seen) == 1
    client, _ = scripted(503)
    with pytest.raises(SmokeError, match=r"not ready within 0 s.*HTTP 503"):
        wait_ready("http://x", "k", 0, progress=lambda _: None, poll_s=0, client=client)


def test_table_has_one_row_per_result_and_says_why_a_row_failed() -> None:
    rows = [
        SmokeResult("python", "python", 24, 2.0, "length", True, "valid prefix", "def f("),
        SmokeResult("json", "json", 10, 0.5, "stop", False, "rejected at 1:3: oops", "{]"),
    ]
    table = format_table(rows).splitlines()
    assert table[0].split() == ["language", "tokens", "seconds", "tokens/s", "valid"]
    assert table[2].split()[:5] == ["python", "24", "2.00", "12.0", "yes"]
    assert "NO: rejected at 1:3: oops" in table[3]


def test_smoke_against_the_local_stack(stack) -> None:  # type: ignore[no-untyped-def]
    """The whole entrypoint logic, pointed at a local URL instead of Modal's."""
    lines: list[str] = []
    code = run_smoke(stack.base_url, stack.api_key, max_tokens=24, ready_deadline_s=120, out=lines.append)
    output = "\n".join(lines)
    assert code == 0, output
    rows = output.splitlines()
    for name in grammars.names():
        assert any(row.startswith(name) and "yes (" in row for row in rows), output
    assert f"{len(grammars.names())}/{len(grammars.names())} outputs obey their grammar" in output


def test_each_result_carries_tokens_timing_and_a_verdict(stack) -> None:  # type: ignore[no-untyped-def]
    (result,) = run_requests(stack.base_url, stack.api_key, max_tokens=16, names=["json"])
    assert result.grammar == "json" and result.valid
    assert 0 < result.tokens <= 16 and result.seconds > 0 and result.tokens_per_s > 0
    assert result.finish_reason in ("stop", "length")
    assert result.verdict == ("complete" if result.finish_reason == "stop" else "valid prefix")
