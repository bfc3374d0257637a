"""LiteLLM's SDK through its ``hosted_vllm/`` provider: ``extra_body`` reaches the gateway unchanged.

MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... python examples/litellm_example.py

``LITELLM_LOCAL_MODEL_COST_MAP=True`` keeps LiteLLM from fetching its price list from GitHub at import
(seconds of retries on a machine without internet).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # after the environment variable it reads at import
from openai import OpenAI

SUM = r"""
start: "(" NUM ("+" NUM){0,3} ")"
NUM: /[1-9][0-9]{0,2}/
"""


def main() -> None:
    api_base = os.environ["MAZE_ENDPOINT_URL"].rstrip("/") + "/v1"
    api_key = os.environ["MAZE_API_KEY"]
    served = OpenAI(base_url=api_base, api_key=api_key).models.list().data[0].id
    # hosted_vllm/: LiteLLM's provider for vLLM's OpenAI-compatible server
    gateway = {"model": f"hosted_vllm/{served}", "api_base": api_base, "api_key": api_key}

    response = litellm.completion(
        **gateway,
        messages=[{"role": "user", "content": "Add some numbers."}],
        max_tokens=32,
        extra_body={"structured_outputs": {"grammar": SUM}},
    )
    print(response.choices[0].message.content)

    stream = litellm.completion(
        **gateway,
        messages=[{"role": "user", "content": "Write a function that reverses a list."}],
        max_tokens=64,
        stream=True,
        extra_body={"language": "python"},
    )
    for chunk in stream:
        sys.stdout.write(chunk.choices[0].delta.content or "")
        sys.stdout.flush()
    print()


if __name__ == "__main__":
    main()
