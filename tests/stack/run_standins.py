"""`python -m stack run` with stand-in processes instead of the real services (for tests).

python run_standins.py RUN_DIR WEB_PORT PID_DIR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stack.foreground import supervise
from stack.infra import Endpoints
from stack.specs import ProcessSpec
from stack.supervisor import Stack

STANDIN = str(Path(__file__).with_name("standin.py"))


def main() -> int:
    run_dir, web_port, pid_dir = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    env = dict(os.environ)
    specs = [
        ProcessSpec(
            "web",
            [sys.executable, STANDIN, "web", web_port, "--pid-dir", pid_dir],
            env,
            health_url=f"http://127.0.0.1:{web_port}/api/v1/health",
        ),
        ProcessSpec("worker", [sys.executable, STANDIN, "worker", "0", "--pid-dir", pid_dir], env),
    ]
    endpoints = Endpoints("redis://unused", "postgresql://unused", "unused:9092")
    stack = Stack(run_dir, env, endpoints=endpoints, specs=specs, run_setup=False)
    return supervise(stack, env)


if __name__ == "__main__":
    sys.exit(main())
