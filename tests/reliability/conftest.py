"""The fake-upstream gateway pair (``benchmarks.soak``): the real ``python -m gateway`` process in
front of a fast fake vLLM, for limits, load and logs that do not need a model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.soak import Pair, gateway_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with gateway_pair(tmp_path_factory.mktemp("pair") / "gateway.log") as running:
        yield running
