"""The stock openai SDK, nothing else: constraints travel in ``extra_body``.

MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... python examples/openai_sdk.py
"""

from __future__ import annotations

import os
import sys

from openai import OpenAI

SUM = r"""
start: "(" NUM ("+" NUM){0,3} ")"
NUM: /[1-9][0-9]{0,2}/
"""


def main() -> None:
    client = OpenAI(base_url=os.environ["MAZE_ENDPOINT_URL"].rstrip("/") + "/v1", api_key=os.environ["MAZE_API_KEY"])
    model = client.models.list().data[0].id  # the served model's name

    # Your own Lark grammar (llguidance dialect): vLLM's structured_outputs field.
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Add some numbers."}],
        max_tokens=32,
        extra_body={"structured_outputs": {"grammar": SUM}},
    )
    print(completion.choices[0].message.content)

    # A grammar from the gateway's library, by name, streamed.
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Write a function that reverses a list."}],
        max_tokens=64,
        stream=True,
        extra_body={"language": "python"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            sys.stdout.write(chunk.choices[0].delta.content)
            sys.stdout.flush()
    print()

    # OpenAI's own structured-output field works too.
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Is it ok?"}],
        max_tokens=16,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )
    print(completion.choices[0].message.content)


if __name__ == "__main__":
    main()
