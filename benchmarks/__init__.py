"""Benchmarks: what the gateway costs, what the grammars cost, and where the GPU ceiling is.

``python -m benchmarks`` runs the three local measurements (gateway overhead, grammar engine,
constrained decoding on the CPU vLLM) and the GPU ceiling arithmetic, and writes one JSON result
and one Markdown table per part into ``benchmarks/results/`` (plus ``gateway.png``). BENCHMARKS.md
at the repository root explains and quotes them.

Modules, one per part: :mod:`benchmarks.gateway_overhead` (with :mod:`benchmarks.fake_upstream`,
:mod:`benchmarks.loadgen`, :mod:`benchmarks.litellm_ref`), :mod:`benchmarks.grammar_engine`,
:mod:`benchmarks.decoding`, :mod:`benchmarks.gpu_ceiling` (which also writes the sizing and cost tables),
:mod:`benchmarks.throughput` (``python -m benchmarks throughput``, run against a deployment by
``modal run modal_deploy.py::bench``), :mod:`benchmarks.engine_step` (vLLM's engine step with and
without the engine plugin) and :mod:`benchmarks.plugin_cpu` (the CPU stack with the plugin off and
on). They are a tool, not part of the service: nothing in ``app/``, ``gateway/`` or ``client/``
imports them.
"""
