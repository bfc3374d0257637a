"""The masks part: classifies every mask along a replayed file and writes the tables it reports.

No timing is asserted (a tiny run's numbers mean nothing); what is asserted is that every replayed
mask is classified, the class shares add up, the files replay cleanly, and the result files have
the fields BENCHMARKS.md quotes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import masks


def test_contexts_fold_names_and_numbers_and_show_whitespace() -> None:
    words = masks.grammar_words('KW_IF: "if" WS\nNAME: /[a-z]+/\nDOT: "."')
    assert words == frozenset({"if"})
    assert masks.context_of(b" if", words) == "·if"
    assert masks.context_of(b" request", words) == "·<name>"
    assert masks.context_of(b"0x1f", words) == "<number>"
    assert masks.context_of(b"\n        ", words) == "⏎·x8"
    assert masks.context_of(b" =\n", words) == "·=⏎"
    assert masks.context_of(b"", words) == "(start of file)"


@pytest.mark.parametrize(
    ("stats", "kind"),
    [
        ({"trie_nodes_walked": 0, "slices_applied": 0}, masks.REUSED),
        ({"trie_nodes_walked": 14_000, "slices_applied": 1}, masks.SLICED),
        ({"trie_nodes_walked": 300_000, "slices_applied": 0}, masks.WALKED),
    ],
)
def test_kind_follows_llguidance_step_stats(stats: dict[str, int], kind: str) -> None:
    assert masks.kind_of(stats) == kind


def test_masks_part(tmp_path: Path) -> None:
    data = masks.run(masks.QUICK, tmp_path, log=lambda _line: None)
    assert (tmp_path / "masks.md").read_text().startswith("### ")
    assert json.loads((tmp_path / "masks.json").read_text()) == json.loads(json.dumps(data))
    assert set(data["grammars"]) == set(masks.QUICK.grammars)
    for result in data["grammars"].values():
        summary = result["summary"]
        assert result["files"]["files"] == result["files"]["clean"] == 1
        assert summary["masks"] == sum(summary["kinds"][kind]["masks"] for kind in masks.KINDS) > 0
        assert summary["inside"]["masks"] + summary["boundary"]["masks"] == summary["masks"]
        assert sum(summary["kinds"][kind]["share_of_cpu"] for kind in masks.KINDS) == pytest.approx(1, abs=1e-3)
        assert 0 < len(summary["top_contexts"]) <= masks.QUICK.top_contexts
        assert summary["mean_cpu_ms"] > 0 and summary["nodes_walked_per_token"] > 0
