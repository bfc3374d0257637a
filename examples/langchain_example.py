"""LangChain's ``ChatOpenAI`` pointed at the gateway; constraints go in ``extra_body`` (never ``model_kwargs``).

MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... python examples/langchain_example.py
"""

from __future__ import annotations

import os
import sys

from langchain_openai import ChatOpenAI
from openai import OpenAI

SUM = r"""
start: "(" NUM ("+" NUM){0,3} ")"
NUM: /[1-9][0-9]{0,2}/
"""


def main() -> None:
    base_url = os.environ["MAZE_ENDPOINT_URL"].rstrip("/") + "/v1"
    api_key = os.environ["MAZE_API_KEY"]
    model = OpenAI(base_url=base_url, api_key=api_key).models.list().data[0].id  # ChatOpenAI needs a name

    # A constraint for every call of this model object...
    llm = ChatOpenAI(
        base_url=base_url,
        api_key=api_key,
        model=model,
        max_tokens=32,  # sent as max_completion_tokens, which vLLM honours
        extra_body={"structured_outputs": {"grammar": SUM}},
    )
    message = llm.invoke("Add some numbers.")
    print(message.content, message.response_metadata["finish_reason"])

    # ...or one per call (or per chain step with .bind(extra_body=...)); streaming works the same way.
    plain = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, max_tokens=64)
    for chunk in plain.stream("Write a function that reverses a list.", extra_body={"language": "python"}):
        sys.stdout.write(str(chunk.content))
        sys.stdout.flush()
    print()

    # LangChain's own structured output (response_format json_schema) is enforced by the grammar engine too.
    schema = {
        "title": "Answer",
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}},
        "required": ["color"],
        "additionalProperties": False,
    }
    print(plain.with_structured_output(schema, method="json_schema").invoke("Pick a color."))


if __name__ == "__main__":
    main()
