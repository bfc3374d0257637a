"""README.md and BENCHMARKS.md quote the sizing and cost tables the code computes, not stale copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.profiles import PROFILES
from app.sizing import size
from benchmarks import gpu_ceiling

REPO = Path(__file__).resolve().parents[2]
PROFILE_ROWS = {name: gpu_ceiling.profile_row(name) for name, p in PROFILES.items() if p.gpu is not None}


@pytest.mark.parametrize(
    ("doc", "tables"),
    [
        ("README.md", ("memory_table", "sizing_table", "cost_table", "cost_notes")),
        ("BENCHMARKS.md", ("ceiling_table", "cost_table", "cost_notes")),
    ],
)
def test_docs_quote_the_generated_tables(doc: str, tables: tuple[str, ...]) -> None:
    text = (REPO / doc).read_text()
    for name in tables:
        render = getattr(gpu_ceiling, name)
        generated = render() if name in ("memory_table", "cost_notes") else render(PROFILE_ROWS)
        assert generated in text, f"{doc} is out of date for {name}: paste `python -m benchmarks ceiling` output"


def test_cost_rows_follow_the_sizing() -> None:
    for name, row in PROFILE_ROWS.items():
        sized = size(PROFILES[name])
        assert row["max_num_seqs"] == PROFILES[name].max_num_seqs
        assert row["usd_per_million_batch"] == pytest.approx(row["usd_per_hour"] / (row["tok_s_batch"] * 3600) * 1e6)
        assert row["usd_per_million_batch"] < row["usd_per_million_1"]  # batching is what makes tokens cheap
        assert row["binds_today"] == sized.binds_today
    # The headline: the default GPU admits 4x the sequences and its tokens cost several times less.
    default = PROFILE_ROWS["l40s-fp8"]
    assert default["max_num_seqs"] == 12 and default["kv_limited_seqs"] == 16
    cheapest = min(PROFILE_ROWS, key=lambda n: PROFILE_ROWS[n]["usd_per_million_batch"])
    assert cheapest == "h100-fp8"
