"""Stand-ins for vLLM: small stdlib-only Python scripts that behave like its process tree.

They prove the process handling without a 30-90 s vLLM start: a server that spawns grandchildren
(like EngineCore/Worker), ignores SIGTERM, crashes after becoming healthy, or never becomes healthy.
And a GPU profile that is none of the shipped ones, for code that takes any profile.
"""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

from app.profiles import Profile

#: What a later GPU profile looks like: 32B AWQ on one L40S, with an extra vLLM flag.
GPU_PROFILE = Profile(
    name="gpu-test",
    model="Qwen/Qwen2.5-Coder-32B-Instruct-AWQ",
    gpu="L40S",
    quantization="awq_marlin",
    max_model_len=16384,
    gpu_memory_utilization=0.92,
    max_num_seqs=32,
    extra_args=("--enable-prefix-caching",),
    description="test",
)

#: A process tree like vLLM's. argv: PIDFILE MODE
#:   MODE "stubborn": everyone ignores SIGTERM (stop() must escalate to SIGKILL)
#:   MODE "orphaning": the leader exits at once on SIGTERM, its children ignore it (DESIGN.md's
#:                     EngineCore orphan); one child also leaves the group with setsid
#:   MODE "polite": everyone exits on SIGTERM
TREE_SCRIPT = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time

    pidfile, mode = sys.argv[1], sys.argv[2]
    child_code = (
        "import signal, sys, time\\n"
        "if sys.argv[1] != 'polite': signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "time.sleep(600)\\n"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", child_code, mode]),
        subprocess.Popen([sys.executable, "-c", child_code, mode]),
    ]
    if mode == "orphaning":
        children.append(subprocess.Popen([sys.executable, "-c", child_code, mode], start_new_session=True))
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(" ".join(str(p) for p in [os.getpid(), *(c.pid for c in children)]))
    os.replace(pidfile + ".tmp", pidfile)
    print("tree up", flush=True)
    time.sleep(600)
    """
)

#: Fake `python` for the "module" launcher: gets vLLM's argv, serves GET /health and /v1/models on
#: --port, and answers any POST with a slow endless-looking SSE stream (for shutdown tests).
#: Behaviour from env: FAKE_VLLM_MODE = ok | crash-after-ready | fail, FAKE_VLLM_DELAY_S (before
#: listening), FAKE_VLLM_CRASHES (crash-after-ready only this many times, then stay up),
#: FAKE_VLLM_STARTS (file: one line appended per start, so tests can count restarts).
FAKE_VLLM_SCRIPT = textwrap.dedent(
    """
    import http.server, os, sys, threading, time

    argv = sys.argv[1:]
    port = int(argv[argv.index("--port") + 1])
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    starts_file = os.environ["FAKE_VLLM_STARTS"]
    with open(starts_file, "a") as fh:
        fh.write(" ".join(argv) + "\\n")
    with open(starts_file) as fh:
        starts = len(fh.readlines())
    print(f"fake vllm start {starts} mode {mode} argv {argv}", flush=True)
    if mode == "fail":
        print("ValueError: fake vLLM refuses this model", flush=True)
        sys.exit(3)
    time.sleep(float(os.environ.get("FAKE_VLLM_DELAY_S", "0")))

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/v1/models":
                body = b'{"object": "list", "data": [{"id": "fake", "object": "model"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def do_POST(self):  # any completion: a slow SSE stream, 10 chunks a second for 60 s
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for i in range(600):
                    self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\\n\\n')
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b"data: [DONE]\\n\\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    crashes = int(os.environ.get("FAKE_VLLM_CRASHES", "1000"))
    if mode == "crash-after-ready" and starts <= crashes:
        threading.Timer(1.0, lambda: os._exit(1)).start()
    server.serve_forever()
    """
)


def write_script(directory: Path, name: str, body: str) -> Path:
    """Write an executable Python script that runs with this interpreter."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
