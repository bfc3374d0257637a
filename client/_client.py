"""``MazeClient`` and ``AsyncMazeClient``: the stock openai SDK clients plus constraint-aware helpers.

Both share ``_Base`` (configuration, request building); each adds only its own I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import httpx
import openai

from ._config import ClientConfig
from ._ready import Progress, ReadyWait, aget_ready, get_ready
from ._request import chat_request, completion_text, constraint_body, first_model
from ._stream import AsyncTextStream, TextStream

DEFAULT_MAX_TOKENS = 512


class _Constraints(TypedDict):
    """The constraint arguments ``generate`` hands on by name (with ``regex`` and ``choice``)."""

    language: str | None
    grammar: str | None
    json_schema: dict[str, Any] | str | None


class _Base:
    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        model: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
    ) -> None:
        self.config = ClientConfig.resolve(base_url, api_key, timeout=timeout, max_retries=max_retries)
        #: The model for calls that name none; None until the first such call asks ``/v1/models``.
        self.model = model

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}"}

    def _ready_wait(self, timeout: float, interval: float, progress: Progress | None) -> ReadyWait:
        return ReadyWait(f"{self.config.base_url}/ready", timeout, interval, progress)

    @staticmethod
    def _request(
        prompt: str,
        model: str,
        *,
        language: str | None,
        grammar: str | None,
        json_schema: dict[str, Any] | str | None,
        regex: str | None,
        choice: Sequence[str] | None,
        **options: Any,
    ) -> dict[str, Any]:
        body = constraint_body(language=language, grammar=grammar, json_schema=json_schema, regex=regex, choice=choice)
        return chat_request(prompt, model=model, extra_body=body, **options)


class MazeClient(_Base):
    """A synchronous client for a maze-inference gateway; ``.openai`` is the underlying ``openai.OpenAI``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, api_key, **kwargs)
        self.openai = openai.OpenAI(
            base_url=self.config.openai_base_url,
            api_key=self.config.api_key,
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
        )

    def resolve_model(self, model: str | None = None) -> str:
        """``model``, else the client's, else the first of ``/v1/models`` (asked once, then cached)."""
        if model:
            return model
        if self.model is None:
            self.model = first_model(self.openai.models.list())
        return self.model

    def generate(
        self,
        prompt: str,
        *,
        language: str | None = None,
        grammar: str | None = None,
        json_schema: dict[str, Any] | str | None = None,
        regex: str | None = None,
        choice: Sequence[str] | None = None,
        system: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
        stream: bool = False,
        model: str | None = None,
    ) -> str | TextStream:
        """The completion's text, or with ``stream=True`` a ``TextStream`` of text deltas.

        At most one constraint: ``language`` (a library grammar), ``grammar`` (Lark), ``json_schema``,
        ``regex`` or ``choice``; more than one raises ``ConstraintError`` (a ``ValueError``) before any request.
        """
        constraints: _Constraints = {"language": language, "grammar": grammar, "json_schema": json_schema}
        constraint_body(**constraints, regex=regex, choice=choice)  # fail before asking for the model
        request = self._request(
            prompt, self.resolve_model(model), **constraints, regex=regex, choice=choice,
            system=system, max_tokens=max_tokens, temperature=temperature, stream=stream,
        )  # fmt: skip
        if stream:
            return TextStream(self.openai.chat.completions.create(**request))
        return completion_text(self.openai.chat.completions.create(**request))

    def wait_for_ready(
        self, timeout: float = 900.0, *, interval: float = 2.0, progress: Progress | None = None
    ) -> None:
        """Block until ``GET /ready`` answers 200; ``progress(elapsed, status)`` is called while it does not.

        Raises ``NotReadyError`` (a ``TimeoutError``) after ``timeout`` seconds and ``openai.AuthenticationError``
        at once on a 401.
        """
        wait = self._ready_wait(timeout, interval, progress)
        with httpx.Client(timeout=min(10.0, timeout), follow_redirects=True) as http:
            wait.run(lambda: get_ready(http, wait.url, self._headers))

    def close(self) -> None:
        self.openai.close()

    def __enter__(self) -> MazeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncMazeClient(_Base):
    """The asyncio client; ``.openai`` is the underlying ``openai.AsyncOpenAI``. Same arguments as ``MazeClient``."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, api_key, **kwargs)
        self.openai = openai.AsyncOpenAI(
            base_url=self.config.openai_base_url,
            api_key=self.config.api_key,
            timeout=self.config.timeout,
            max_retries=self.config.max_retries,
        )

    async def resolve_model(self, model: str | None = None) -> str:
        if model:
            return model
        if self.model is None:
            self.model = first_model(await self.openai.models.list())
        return self.model

    async def generate(
        self,
        prompt: str,
        *,
        language: str | None = None,
        grammar: str | None = None,
        json_schema: dict[str, Any] | str | None = None,
        regex: str | None = None,
        choice: Sequence[str] | None = None,
        system: str | None = None,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        temperature: float | None = None,
        stream: bool = False,
        model: str | None = None,
    ) -> str | AsyncTextStream:
        """As ``MazeClient.generate``; with ``stream=True``, ``async for delta in await client.generate(...)``."""
        constraints: _Constraints = {"language": language, "grammar": grammar, "json_schema": json_schema}
        constraint_body(**constraints, regex=regex, choice=choice)
        request = self._request(
            prompt, await self.resolve_model(model), **constraints, regex=regex, choice=choice,
            system=system, max_tokens=max_tokens, temperature=temperature, stream=stream,
        )  # fmt: skip
        if stream:
            return AsyncTextStream(await self.openai.chat.completions.create(**request))
        return completion_text(await self.openai.chat.completions.create(**request))

    async def wait_for_ready(
        self, timeout: float = 900.0, *, interval: float = 2.0, progress: Progress | None = None
    ) -> None:
        """As ``MazeClient.wait_for_ready``, without blocking the event loop."""
        wait = self._ready_wait(timeout, interval, progress)
        async with httpx.AsyncClient(timeout=min(10.0, timeout), follow_redirects=True) as http:
            await wait.arun(lambda: aget_ready(http, wait.url, self._headers))

    async def close(self) -> None:
        await self.openai.close()

    async def __aenter__(self) -> AsyncMazeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
