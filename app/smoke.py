"""Smoke test for a running deployment: is it up, and does every library grammar hold on real output?

`modal run modal_deploy.py` calls `run_smoke` with the deployed URL; the tests call it with the local
stack's URL. Nothing here imports modal, so the same code is tested offline against real CPU vLLM.

What it does:
1. waits for the gateway's `/ready` (vLLM loaded), printing a progress line while a cold start runs;
2. sends one grammar-constrained chat request per library grammar through the stock openai SDK,
   streamed, as long generations must be behind Modal's 150 s limit on a web request;
3. checks each output locally with llguidance against the same grammar: the whole grammar when the
   model stopped, a valid prefix when `max_tokens` cut it off (finish_reason "length");
4. prints a table: language, tokens, seconds, tokens/s, valid. Exit code 0 only if every row is valid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

import grammars
from client._ready import Poll, every

#: Prompts that ask for something each grammar can express; other grammars get a generic one.
PROMPTS: dict[str, str] = {
    "python": "Write a Python function that merges two sorted lists.",
    "typescript": "Write a TypeScript function that debounces another function.",
    "rust": "Write a Rust function that returns the n-th Fibonacci number.",
    "go": "Write a Go function that reverses a slice of ints.",
    "zig": "Write a Zig function that sums a slice of u32.",
    "json": "Describe a user account as JSON.",
}

Printer = Callable[[str], None]


class SmokeError(Exception):
    """The deployment cannot be smoke-tested: not ready in time, or the key was refused."""


@dataclass(frozen=True)
class SmokeResult:
    """One constrained request and the local grammar check of its output."""

    grammar: str
    language: str
    tokens: int
    seconds: float
    finish_reason: str | None
    valid: bool
    #: "complete", "valid prefix" or why llguidance rejected the text.
    verdict: str
    text: str

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens over wall time, prefill and network included: a floor, not the decode rate."""
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def wait_ready(
    base_url: str,
    api_key: str,
    deadline_s: float,
    *,
    progress: Printer = print,
    progress_every_s: float = 15.0,
    poll_s: float = 2.0,
    client: httpx.Client | None = None,
) -> float:
    """Poll `GET /ready` until it answers 200; return the seconds waited.

    Anything but 200 (503 while vLLM loads, connection errors while Modal starts a container, a read
    timeout while Modal holds the request during a cold start) means "not yet", except 401/403: a
    wrong key will not become right by waiting. Redirects are followed because Modal answers
    requests held longer than 150 s with a 303 to a URL that keeps waiting.
    """
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)
    url = f"{base_url.rstrip('/')}/ready"

    def report(elapsed: float, reason: str | None) -> None:
        progress(f"  waiting for {base_url}/ready: {elapsed:.0f} s ({reason})")

    def timed_out(elapsed: float, reason: str | None) -> SmokeError:
        return SmokeError(f"{base_url} was not ready within {deadline_s:.0f} s (last: {reason})")

    poll = Poll(lambda reason: reason is None, deadline_s, poll_s, timed_out, every(progress_every_s, report))
    try:
        elapsed = poll.run(lambda: _probe(http, url, api_key))
    finally:
        if client is None:
            http.close()
    progress(f"ready after {elapsed:.0f} s")
    return elapsed


def _probe(http: httpx.Client, url: str, api_key: str) -> str | None:
    """None when ready, else a short reason to show in the progress line."""
    try:
        response = http.get(url, headers={"Authorization": f"Bearer {api_key}"})
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if response.status_code in (401, 403):
        raise SmokeError(f"the gateway refused the API key ({response.status_code}); check MAZE_API_KEYS")
    if response.status_code == 200:
        return None
    return f"HTTP {response.status_code}"


def check_output(grammar_text: str, text: str, finish_reason: str | None) -> tuple[bool, str]:
    """(valid, verdict) for one output, checked byte by byte with llguidance.

    A completion that stopped by itself must be a whole sentence of the grammar. One cut off by
    max_tokens ("length") only has to be a valid prefix: every byte accepted, just not finished.
    """
    from grammars.validation import check_text  # llguidance; only needed once outputs exist

    verdict = check_text(grammar_text, text)
    if verdict.accepted:
        return True, "complete"
    if finish_reason == "length" and verdict.offset == len(text.encode("utf-8")):
        return True, "valid prefix"
    return False, f"rejected at {verdict.where()}: {verdict.message}"


def run_requests(
    base_url: str,
    api_key: str,
    *,
    max_tokens: int,
    names: Sequence[str] | None = None,
    temperature: float = 0.7,
    timeout_s: float = 600.0,
) -> list[SmokeResult]:
    """One streamed, constrained chat completion per library grammar (or per name in `names`)."""
    import openai

    client = openai.OpenAI(base_url=f"{base_url.rstrip('/')}/v1", api_key=api_key, max_retries=0, timeout=timeout_s)
    model = client.models.list().data[0].id
    results = []
    for info in grammars.list_grammars():
        if names is not None and info.name not in names:
            continue
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPTS.get(info.name, f"Write a short {info.language} program.")}],
            max_tokens=max_tokens,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"language": info.name},  # the gateway's shortcut for a library grammar
        )
        parts: list[str] = []
        finish_reason: str | None = None
        tokens = 0
        for chunk in stream:
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
        seconds = time.perf_counter() - started
        text = "".join(parts)
        valid, verdict = check_output(grammars.load(info.name), text, finish_reason)
        results.append(SmokeResult(info.name, info.language, tokens, seconds, finish_reason, valid, verdict, text))
    return results


def format_table(results: Sequence[SmokeResult]) -> str:
    """The results as a fixed-width table, one row per grammar."""
    header = ("language", "tokens", "seconds", "tokens/s", "valid")
    rows = [
        (
            r.grammar if r.grammar == r.language else f"{r.language} ({r.grammar})",
            str(r.tokens),
            f"{r.seconds:.2f}",
            f"{r.tokens_per_s:.1f}",
            f"yes ({r.verdict})" if r.valid else f"NO: {r.verdict}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    head = "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()
    return "\n".join([head, "-" * len(head), *lines])


def run_smoke(
    base_url: str,
    api_key: str,
    *,
    max_tokens: int = 256,
    ready_deadline_s: float = 1800.0,
    names: Sequence[str] | None = None,
    out: Printer = print,
    show_outputs: bool = False,
) -> int:
    """Wait for the deployment, run one request per grammar, print the table; 0 if every output is valid."""
    out(f"waiting for {base_url} to be ready (a cold start loads the model: minutes)")
    try:
        wait_ready(base_url, api_key, ready_deadline_s, progress=out)
    except SmokeError as exc:
        out(f"error: {exc}")
        return 1
    results = run_requests(base_url, api_key, max_tokens=max_tokens, names=names)
    if show_outputs:
        for r in results:
            out(f"\n== {r.grammar} ({r.finish_reason}, {r.verdict}):\n{r.text}")
        out("")
    out(format_table(results))
    failures = [r for r in results if not r.valid]
    for r in failures:
        out(f"\n{r.grammar} output that failed its grammar:\n{r.text}")
    out(f"{len(results) - len(failures)}/{len(results)} outputs obey their grammar")
    return 1 if failures or not results else 0
