"""A stand-in service for supervisor tests: serves GET /api/v1/health, prints, obeys SIGTERM.

    python standin.py NAME PORT [--pid-dir DIR] [--crash-once MARKER] [--exit-code N]
                      [--ignore-term]

`--crash-once MARKER`: when MARKER does not exist, create it and exit with --exit-code soon
after starting (the supervisor should restart it). `--exit-code` alone: always exit with it.
`--ignore-term`: ignore SIGTERM (only SIGKILL ends it). PORT 0 means no HTTP server.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/api/v1/health" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("--pid-dir")
    parser.add_argument("--crash-once")
    parser.add_argument("--exit-code", type=int)
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()

    if args.pid_dir:
        Path(args.pid_dir, f"{args.name}.{os.getpid()}.pid").write_text(str(os.getpid()))
    print(f"{args.name} starting pid={os.getpid()}", flush=True)
    print(f"{args.name} to stderr", file=sys.stderr, flush=True)
    if args.crash_once:
        marker = Path(args.crash_once)
        if not marker.exists():
            marker.write_text("crashed")
            time.sleep(0.2)
            print(f"{args.name} crashing", flush=True)
            return args.exit_code or 3
    elif args.exit_code is not None:
        print(f"{args.name} failing", flush=True)
        return args.exit_code

    stop = threading.Event()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, lambda *_: print(f"{args.name} ignores SIGTERM", flush=True))
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = None
    if args.port:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{args.name} ready env_marker={os.environ.get('STANDIN_MARKER', '')}", flush=True)
    stop.wait()
    if server is not None:
        server.shutdown()
        server.server_close()
    print(f"{args.name} got SIGTERM, bye", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
