#!/usr/bin/env bash
# The gateway with nothing but curl: the OpenAI route (a grammar, then a library language, streamed)
# and Maze's /generate.
#
#   MAZE_ENDPOINT_URL=http://127.0.0.1:8000 MAZE_API_KEY=... bash examples/curl.sh
set -euo pipefail
: "${MAZE_ENDPOINT_URL:?set MAZE_ENDPOINT_URL (the gateway root, without /v1)}"
: "${MAZE_API_KEY:?set MAZE_API_KEY}"
URL="${MAZE_ENDPOINT_URL%/}"
AUTH="Authorization: Bearer ${MAZE_API_KEY}"

# Wait out a cold start: /ready answers 503 until vLLM has loaded the model.
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" "$URL/ready")" = 200 ]; do
    echo "waiting for the server (cold start)…" >&2
    sleep 5
done

# A Lark grammar in vLLM's structured_outputs field ("model" may be left out: the gateway fills it in).
curl -sS --fail-with-body "$URL/v1/chat/completions" -H "$AUTH" -H 'Content-Type: application/json' -d '{
  "messages": [{"role": "user", "content": "Add some numbers."}],
  "max_tokens": 32,
  "structured_outputs": {"grammar": "start: \"(\" NUM (\"+\" NUM){0,3} \")\"\nNUM: /[1-9][0-9]{0,2}/"}
}'
echo

# A library grammar by name, streamed as server-sent events (-N: print each event as it arrives).
curl -sS -N --fail-with-body "$URL/v1/chat/completions" -H "$AUTH" -H 'Content-Type: application/json' -d '{
  "messages": [{"role": "user", "content": "Write a function that reverses a list."}],
  "max_tokens": 32, "stream": true, "language": "python"
}'

# Maze's own wire format.
curl -sS --fail-with-body "$URL/generate" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"prompt": "Write a function that adds two numbers.", "max_tokens": 32, "language": "python"}'
echo
