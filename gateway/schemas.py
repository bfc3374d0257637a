"""Request bodies the gateway reads.

Only the fields the gateway checks or uses are declared; everything else passes through to vLLM
unchanged (``extra="allow"``), so new vLLM sampling options work without a gateway release. The
declared bounds turn obvious mistakes (``max_tokens: 0``, ``temperature: -1``) into a 400 that names
the field, before a GPU sees them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PassthroughRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1, le=16)
    structured_outputs: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    language: str | None = Field(default=None, description="Gateway extension: a library grammar name.")
    guided_grammar: str | None = None
    guided_json: dict[str, Any] | str | bool | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None

    def forwarded(self) -> dict[str, Any]:
        """The body as the client sent it (declared and extra fields), minus unset defaults."""
        return self.model_dump(exclude_unset=True)


class ChatCompletionRequest(PassthroughRequest):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(PassthroughRequest):
    prompt: str | list[Any] = Field(min_length=1)


class GenerateRequest(BaseModel):
    """Maze's ``POST /generate`` body. Maze's provider sends ``{prompt, max_tokens, temperature,
    grammar?, language?}``; the rest are optional refinements."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    grammar: str | None = Field(default=None, description="A Lark grammar (llguidance dialect).")
    language: str | None = Field(
        default=None, description="Library grammar to use when no grammar is given; else metadata."
    )
    json_schema: dict[str, Any] | None = Field(default=None, description="Constrain to a JSON schema.")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    system: str | None = None


class BatchGenerateRequest(BaseModel):
    """``POST /generate/batch``: many ``/generate`` bodies at once.

    Items stay plain objects here and are validated one by one in the route, so a bad item becomes
    that item's error instead of failing the whole batch.
    """

    model_config = ConfigDict(extra="ignore")

    requests: list[dict[str, Any]] = Field(min_length=1, description="``/generate`` bodies, answered in order.")
    max_concurrency: int | None = Field(
        default=None, ge=1, description="Most items in flight at once (capped by MAZE_MAX_BATCH_CONCURRENCY)."
    )


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and what to change.")
    type: str = Field(description="OpenAI error type, e.g. invalid_request_error, authentication_error.")
    param: str | None = Field(default=None, description="The request field at fault, when there is one.")
    code: str | int | None = Field(default=None, description="A stable machine-readable code, when there is one.")


class ErrorResponse(BaseModel):
    """Every refusal, in OpenAI's shape; Maze's routes add ``success: false``."""

    success: bool | None = Field(default=None, description="Only on /generate routes: always false here.")
    error: ErrorDetail


class GenerateMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    finish_reason: str | None = None
    tokens: int = Field(description="Completion tokens (the older name Maze's provider also reads).")
    tokens_generated: int
    prompt_tokens: int
    duration_seconds: float
    grammar_constrained: bool
    constraint: str | None = None
    language: str | None = None
    model: str | None = None


class GenerateResponse(BaseModel):
    success: bool
    code: str = Field(description="The generated source text.")
    metadata: GenerateMetadata


class BatchGenerateResponse(BaseModel):
    success: bool
    results: list[GenerateResponse | ErrorResponse] = Field(description="One result per request, in order.")
