"""Fill one engine step's grammar masks on several threads at once.

vLLM 0.32 fills the masks of up to 128 running sequences one after another on its engine thread
(`StructuredOutputManager.grammar_bitmask`), at 0.6-1.2 ms per code-grammar sequence. Async scheduling
hides that behind the GPU's forward pass only while it is shorter: 64 Python sequences cost ~75 ms
against an H100 decode step of 12-22 ms. llguidance's `LLExecutor` computes many matchers' masks on
its own Rust threads without the GIL, writing each into its row of the same bitmask tensor, with the
same code that fills one mask, so the bits are the same.
"""

from __future__ import annotations

import threading

import llguidance
import llguidance.torch as llguidance_torch
import torch


class ParallelMaskFiller:
    """An llguidance executor of a fixed size, created on first use and closed with the engine."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor: llguidance.LLExecutor | None = None
        self._lock = threading.Lock()

    def fill(self, rows: list[tuple[llguidance.LLMatcher, int]], bitmask: torch.Tensor) -> None:
        """Write each matcher's next-token mask into `bitmask[row]`.

        Matchers that are stopped or in an error state get the EOS-only mask, as with the serial fill.
        One row is filled inline: a batch of one gains nothing from a thread hop.
        """
        if len(rows) == 1 or self.threads == 1:
            for matcher, row in rows:
                llguidance_torch.fill_next_token_bitmask(matcher, bitmask, row)
            return
        llguidance_torch.fill_next_token_bitmask_par(self._get_executor(), rows, bitmask)

    def close(self) -> None:
        """Release the executor; its threads end once no fill holds it."""
        with self._lock:
            self._executor = None

    def _get_executor(self) -> llguidance.LLExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = llguidance.LLExecutor(num_threads=self.threads)
            return self._executor
