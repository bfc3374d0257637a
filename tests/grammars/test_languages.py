"""The checks every code grammar with a parser to answer to gets: it compiles, its snippets are what the
language's own parser says they are, it accepts real files, random walks through it parse, and real files
replayed as generations are allowed token by token.

Each language's module (``test_go_grammar.py``, ...) holds its snippets and the tests only it needs;
:data:`LANGUAGES` says, per language, what these checks need to know. Snippet verdicts use llguidance's
byte-level tokenizer (same verdict as Qwen's, exact offsets); the soundness walks and the mask replay
use the Qwen tokenizer, which is what vLLM feeds the matcher. The snippets are first checked with the
language's parser, so they cannot drift from the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest

import grammars
from grammar_lab import corpus, parsers, walk
from grammar_lab.masks import replay_with_masks
from grammars.tokenizers import DEFAULT_TOKENIZER_DIR, get_tokenizer
from grammars.validation import check_text, validate

from . import test_go_grammar as go
from . import test_rust_grammar as rust
from . import test_typescript_grammar as typescript
from . import test_zig_grammar as zig
from .markers import needs_gofmt, needs_qwen, needs_rustfmt, needs_tsc, needs_zig


@dataclass(frozen=True)
class Language:
    """A library grammar, its snippets, and what its checks against the language's parser need."""

    name: str
    title: str
    valid: dict[str, str]
    #: Snippets the grammar rejects; the language's parser rejects them too.
    invalid: dict[str, str]
    #: Snippets the grammar rejects and the parser lets through (the language's module says why).
    stricter: dict[str, str]
    needs_parser: pytest.MarkDecorator
    #: Corpus accept-rate goal (issue 4), the sample checked in the test run, and how to install the corpus.
    corpus_goal: float
    corpus_sample: int
    corpus_hint: str
    #: Mask replay: the first two of the first ``mask_sample`` corpus files below ``mask_file_bytes``.
    mask_sample: int
    mask_file_bytes: int
    #: Keyword arguments of :func:`grammar_lab.walk.walk`, and what the finished walks must add up to.
    walks: dict[str, Any]
    min_walks: int
    min_walk_chars: int = 0
    #: False where the language's module compares its snippets with its parser itself.
    snippets_checked_here: bool = True

    @cached_property
    def grammar(self) -> str:
        return grammars.load(self.name)

    def __str__(self) -> str:
        return self.name


LANGUAGES = [
    Language(
        name="go",
        title="Go",
        valid=go.VALID,
        invalid=go.INVALID,
        stricter=go.NOT_GO,
        needs_parser=needs_gofmt,
        # the stdlib of Debian's golang-go, already gofmt-valid
        corpus_goal=0.97,
        corpus_sample=40,
        corpus_hint="python -m grammar_lab.corpus fetch go",
        mask_sample=40,
        mask_file_bytes=4_000,
        walks={"count": 30, "seed": 7, "max_tokens": 60, "max_attempts": 60},
        min_walks=10,
    ),
    Language(
        name="rust",
        title="Rust",
        valid=rust.VALID,
        invalid=rust.INVALID,
        stricter={},
        needs_parser=needs_rustfmt,
        # Debian librust-*-dev crate sources, already rustfmt-valid
        corpus_goal=0.95,
        corpus_sample=40,
        corpus_hint="python -m grammar_lab.corpus fetch rust",
        mask_sample=40,
        mask_file_bytes=3_000,
        # A walk finishes only after a whole item (an empty file is not a program, issue 15), and random
        # tokens rarely close one: with a bias towards short tokens 5 of 80 walks of 250 tokens finish,
        # each a real item. `python -m grammar_lab.sound --language rust -n 300` is the full measurement.
        walks={"count": 20, "seed": 7, "max_tokens": 250, "short_bias": 0.9},
        min_walks=4,
        min_walk_chars=300,
    ),
    Language(
        name="typescript",
        title="TypeScript",
        valid=typescript.VALID,
        invalid=typescript.INVALID,
        stricter=typescript.NOT_CODE,
        needs_parser=needs_tsc,
        # .ts files from npm packages, already valid for the TypeScript parser
        corpus_goal=0.90,
        corpus_sample=60,
        corpus_hint="python -m grammar_lab.corpus fetch typescript",
        mask_sample=60,
        mask_file_bytes=2_500,
        # walks that stop less eagerly than the default, so that they get past the first statement
        walks={"count": 40, "seed": 7, "max_tokens": 150, "stop_probability": 0.5},
        min_walks=30,
    ),
    Language(
        name="zig",
        title="Zig",
        valid=zig.VALID,
        invalid=zig.INVALID,
        stricter=zig.NOT_FORMATTED,
        needs_parser=needs_zig,
        # ziglang's lib/std and compiler sources, already ast-check-valid
        corpus_goal=0.95,
        corpus_sample=50,
        corpus_hint="pip install ziglang",
        mask_sample=40,
        mask_file_bytes=3_000,
        # Walks stop rarely once the grammar accepts (one declaration already does), so they reach into
        # declarations, bodies and expressions instead of ending at once. Judged by `zig fmt` (the
        # parser alone): see test_zig_grammar.py for why not ast-check.
        walks={"count": 5, "seed": 11, "max_tokens": 100, "stop_probability": 0.1},
        min_walks=3,
        min_walk_chars=100,
        snippets_checked_here=False,
    ),
]


def with_parser(languages: list[Language], *marks: pytest.MarkDecorator) -> list[Any]:
    """``languages`` as parameters that skip where the language's parser (or another mark's tool) is missing."""
    return [pytest.param(language, marks=[language.needs_parser, *marks], id=language.name) for language in languages]


@pytest.mark.parametrize("language", LANGUAGES, ids=str)
def test_grammar_compiles(language: Language) -> None:
    assert validate(language.grammar) == ""
    info = grammars.get_info(language.name)
    assert info.language == language.name and info.description


@pytest.mark.parametrize("language", with_parser([lang for lang in LANGUAGES if lang.snippets_checked_here]))
def test_snippets_agree_with_the_languages_parser(language: Language) -> None:
    """The snippets themselves: the valid ones the language's parser accepts, the invalid ones it rejects."""
    valid = parsers.check(language.name, list(language.valid.values()))
    assert {name: v for name, v in zip(language.valid, valid, strict=True) if v is not None} == {}
    invalid = parsers.check(language.name, list(language.invalid.values()))
    assert [name for name, v in zip(language.invalid, invalid, strict=True) if v is None] == []


def snippets(kinds: tuple[str, ...]) -> list[Any]:
    """Every language's snippets of those kinds (``valid``, ``invalid``, ``stricter``) as parameters."""
    return [
        pytest.param(language, source, id=f"{language.name}-{name}")
        for language in LANGUAGES
        for kind in kinds
        for name, source in getattr(language, kind).items()
    ]


@pytest.mark.parametrize(("language", "source"), snippets(("valid",)))
def test_accepts_valid_snippets(language: Language, source: str) -> None:
    verdict = check_text(language.grammar, source)
    assert verdict.accepted, f"rejected at {verdict.where()}: {verdict.message}"


@pytest.mark.parametrize(("language", "source"), snippets(("invalid", "stricter")))
def test_rejects_invalid_snippets(language: Language, source: str) -> None:
    assert not check_text(language.grammar, source).accepted


@pytest.mark.parametrize("language", with_parser(LANGUAGES))
def test_corpus_accept_rate(language: Language) -> None:
    """Real files of the language (already valid for its parser), byte tokenizer."""
    files = corpus.files(language.name, limit=language.corpus_sample)
    if len(files) < language.corpus_sample:
        pytest.skip(f"{language.title} corpus not installed ({language.corpus_hint})")
    rejected = [
        str(path) for path in files if not check_text(language.grammar, path.read_text(encoding="utf-8")).accepted
    ]
    rate = 1 - len(rejected) / len(files)
    assert rate >= language.corpus_goal, f"accepted {rate:.1%}; rejected: {rejected}"


@pytest.mark.parametrize("language", with_parser(LANGUAGES, needs_qwen))
def test_random_walks_parse(language: Language) -> None:
    """Soundness: texts the grammar lets a model write (random Qwen-token walks) all pass the language's parser."""
    report = walk.walk(language.grammar, tokenizer=get_tokenizer(DEFAULT_TOKENIZER_DIR), **language.walks)
    texts = report.texts
    assert len(texts) >= language.min_walks, f"only {len(texts)} walks finished ({report.unfinished} ran out)"
    assert sum(len(text) for text in texts) > language.min_walk_chars
    judged = parsers.check(language.name, texts)
    assert [(text, message) for text, message in zip(texts, judged, strict=True) if message] == []


@pytest.mark.parametrize("language", with_parser(LANGUAGES, needs_qwen))
def test_generation_masks_on_corpus_files(language: Language) -> None:
    """Replay corpus files as generations with Qwen masks: every token allowed, EOS allowed at the end."""
    qwen = get_tokenizer(DEFAULT_TOKENIZER_DIR)
    sample = corpus.files(language.name, limit=language.mask_sample)
    files = [path for path in sample if path.stat().st_size < language.mask_file_bytes][:2]
    if not files:
        pytest.skip(f"{language.title} corpus not installed")
    for path in files:
        verdict, times = replay_with_masks(language.grammar, path.read_text(encoding="utf-8"), qwen)
        assert verdict.accepted, f"{path} at {verdict.where()}: {verdict.message}"
        assert len(times) > 100
