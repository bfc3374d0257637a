"""The API server's grammar check, patched: a grammar that passed is not compiled again; a bad one
meets vLLM's own check and message every time.

Requests go through vLLM 0.32's own `SamplingParams._validate_structured_outputs` with the real Qwen
tokenizer, so the test also proves that vLLM's caller reaches the patched function.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import llguidance
import pytest
from transformers import AutoTokenizer
from vllm.exceptions import VLLMValidationError
from vllm.sampling_params import SamplingParams, StructuredOutputsParams

import grammars
from app.vllm_plugin import patches
from app.vllm_plugin.settings import EnginePluginSettings
from app.vllm_plugin.validation_cache import ValidatedGrammars

TOKENIZER_DIR = Path(__file__).resolve().parents[3] / "app" / "tokenizer" / "qwen2.5-coder"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    patches.install(EnginePluginSettings(mask_threads=2, grammar_prewarm_matchers=0))


@pytest.fixture(scope="module")
def hf_tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every grammar llguidance is asked to validate, in order."""
    seen: list[str] = []
    original = llguidance.LLMatcher.validate_grammar

    def spy(grammar: str, tokenizer: Any = None) -> str:
        seen.append(grammar)
        return original(grammar, tokenizer)

    monkeypatch.setattr(llguidance.LLMatcher, "validate_grammar", staticmethod(spy))
    return seen


def check(grammar: str, tokenizer: Any) -> None:
    """vLLM's own validation of a request carrying `grammar`, as its API server runs it."""
    params = SamplingParams(structured_outputs=StructuredOutputsParams(grammar=grammar))
    params._validate_structured_outputs(
        SimpleNamespace(is_diffusion=False), SimpleNamespace(backend="guidance"), tokenizer
    )


def test_a_grammar_that_passed_is_not_compiled_again(hf_tokenizer: Any, compiles: list[str]) -> None:
    python = grammars.load("python") + "\n// this test's own copy\n"
    for _ in range(3):
        check(python, hf_tokenizer)
    assert len(compiles) == 1
    check(grammars.load("go") + "\n// this test's own copy\n", hf_tokenizer)
    assert len(compiles) == 2


def test_a_bad_grammar_meets_vllms_message_every_time(hf_tokenizer: Any, compiles: list[str]) -> None:
    messages = []
    for _ in range(2):
        with pytest.raises(VLLMValidationError) as caught:
            check("start: undefined_rule\n", hf_tokenizer)
        messages.append(str(caught.value))
    assert len(compiles) == 2
    assert messages[0] == messages[1]
    assert messages[0].startswith("Grammar error:") and "undefined_rule" in messages[0]


def test_a_check_with_an_llguidance_tokenizer_is_never_skipped(
    ll_tokenizer: llguidance.LLTokenizer, compiles: list[str]
) -> None:
    from vllm.v1.structured_output import backend_guidance

    params = SamplingParams(structured_outputs=StructuredOutputsParams(grammar=grammars.load("json")))
    for _ in range(2):
        backend_guidance.validate_guidance_grammar(params, tokenizer=ll_tokenizer)
    assert len(compiles) == 2


def test_bounds_drop_the_least_recently_used() -> None:
    validated = ValidatedGrammars(max_grammars=2, max_bytes=100)
    validated.remember("a", 10)
    validated.remember("b", 10)
    assert validated.passed("a")  # now "b" is the oldest
    validated.remember("c", 10)
    assert validated.passed("a") and validated.passed("c") and not validated.passed("b")
    validated.remember("big", 85)  # 10 + 10 + 85 > 100 bytes: the oldest go until it fits
    assert validated.passed("big") and not validated.passed("a")
    validated.remember("huge", 101)  # larger than the whole budget: never kept
    assert not validated.passed("huge")
    assert (validated.hits, validated.misses) == (4, 3)


def test_a_zero_bound_keeps_nothing() -> None:
    validated = ValidatedGrammars(max_grammars=0, max_bytes=100)
    validated.remember("a", 1)
    assert not validated.enabled and not validated.passed("a") and len(validated) == 0
