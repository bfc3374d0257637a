"""Maze's provider surface: one request with a library grammar, then a batch with one grammar each.

MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... python examples/maze_provider.py
"""

from __future__ import annotations

from client import GenerationRequest, MazeInferenceProvider


def main() -> None:
    provider = MazeInferenceProvider()  # or MazeInferenceProvider(base_url=..., api_key=...)
    response = provider.generate(
        GenerationRequest("Write a function that adds two numbers.", max_tokens=128, metadata={"language": "python"})
    )
    print(response.text, f"\n[{response.finish_reason}, {response.tokens_generated} tokens]")

    requests = [GenerationRequest(f"Name item {i}.", grammar=f'start: "item{i}: " /[a-z]{{1,12}}/') for i in range(8)]
    for response in provider.generate_batch(requests, max_concurrency=8):  # concurrent, answers in request order
        print(response.text)


if __name__ == "__main__":
    main()
