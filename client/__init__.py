"""Client helpers for maze-inference over the stock openai SDK.

    from client import MazeClient
    maze = MazeClient()                       # MAZE_ENDPOINT_URL / MAZE_API_KEY, or MazeClient(url, key)
    maze.wait_for_ready(progress=print)       # rides out a cold start
    code = maze.generate("Reverse a list.", language="python", max_tokens=256)

Only openai, httpx, tenacity and the standard library are imported: nothing from the server side.
"""

from ._client import AsyncMazeClient, MazeClient
from ._config import API_KEY_ENV, ENDPOINT_ENV, ClientConfig
from ._exceptions import ConfigurationError, ConstraintError, MazeClientError, NotReadyError
from ._stream import AsyncTextStream, TextStream
from .maze_provider import GenerationRequest, GenerationResponse, MazeInferenceProvider

__all__ = [
    "API_KEY_ENV",
    "ENDPOINT_ENV",
    "AsyncMazeClient",
    "AsyncTextStream",
    "ClientConfig",
    "ConfigurationError",
    "ConstraintError",
    "GenerationRequest",
    "GenerationResponse",
    "MazeClient",
    "MazeClientError",
    "MazeInferenceProvider",
    "NotReadyError",
    "TextStream",
]
