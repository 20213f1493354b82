"""Driving wrk: a generated request script (unique Idempotency-Keys, rotating tokens) and the
parsing of its report. The script is written to a temporary file at run time, so the project's
only Lua files stay the ones in lua/."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

_REQUEST_SCRIPT = r"""
local tokens = {}
local bodies = %(bodies)s
local distinct = %(distinct)s
local stride = %(threads)s
local path = %(path)s
local method = %(method)s
local counter = 0
thread_id = 0
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  setup_thread_list(thread)
end

function init(args)
  math.randomseed(os.time() + thread_id * 7919)
  counter = math.random(1, 1000000000)
  seq = thread_id
  for line in io.lines(%(tokens_file)s) do
    if #line > 0 then table.insert(tokens, line) end
  end
end

-- rotating: any token per request; distinct: thread t takes tokens t, t+stride, ... in order,
-- so no token is used twice until all were used once
local function next_token()
  if distinct then
    seq = seq + stride
    return tokens[((seq - stride) %% #tokens) + 1]
  end
  return tokens[(counter %% #tokens) + 1]
end

function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. next_token()
  end
  headers["Idempotency-Key"] = "bench-" .. thread_id .. "-" .. counter
  local body = nil
  if #bodies > 0 then body = bodies[(counter %% #bodies) + 1] end
  return wrk.format(method, path, headers, body)
end

local threads = {}
function setup_thread_list(thread) table.insert(threads, thread) end

function response(status, headers, body)
  local key = "s" .. status
  statuses = statuses or {}
  statuses[key] = (statuses[key] or 0) + 1
  if status >= 400 and sample == nil then sample = body end
end

function done(summary, latency, requests)
  io.write("LATENCY_US ", latency:percentile(50), " ", latency:percentile(99), "\n")
  io.write("REQUESTS ", summary.requests, " ", summary.duration, "\n")
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    if counts then
      for key, value in pairs(counts) do io.write("STATUS ", key, " ", value, "\n") end
    end
    local body = thread:get("sample")
    if body then io.write("SAMPLE ", body, "\n") end
  end
end
"""


def _lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(value) for value in values) + "}"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    statuses: dict[str, int]
    sample_error: str

    def row(self) -> dict[str, float | int]:
        return asdict(self)


def run_wrk(
    url: str,
    *,
    method: str = "GET",
    tokens: list[str] | None = None,
    bodies: list[str] | None = None,
    connections: int = 64,
    threads: int = 2,
    duration_s: int = 10,
    timeout_s: int = 5,
    distinct_tokens: bool = False,
) -> WrkResult:
    """Run wrk against `url` (a full URL; its path is requested) and parse the outcome.

    Each request carries a fresh Idempotency-Key and one of `tokens` (rotating, or each token
    once before any repeats with `distinct_tokens`) and one of `bodies`."""
    path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
    base = url[: len(url) - len(path) + 1] if path != "/" else url
    with tempfile.TemporaryDirectory() as scratch:
        tokens_path = Path(scratch) / "tokens.txt"
        tokens_path.write_text("\n".join(tokens or []) + "\n")
        script = _REQUEST_SCRIPT % {
            "tokens_file": json.dumps(str(tokens_path)),
            "bodies": _lua_list(bodies or []),
            "path": json.dumps(path),
            "method": json.dumps(method),
            "distinct": "true" if distinct_tokens else "false",
            "threads": threads,
        }
        script_path = Path(scratch) / "request.lua"
        script_path.write_text(script)
        completed = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration_s}s",
                f"--timeout={timeout_s}s",
                "-s",
                str(script_path),
                base,
            ],
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
            check=True,
        )
    return parse_wrk(completed.stdout)


def parse_wrk(output: str) -> WrkResult:
    latency = re.search(r"LATENCY_US (\S+) (\S+)", output)
    requests = re.search(r"REQUESTS (\d+) (\d+)", output)
    if latency is None or requests is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    statuses: dict[str, int] = {}
    for status, number in re.findall(r"STATUS s(\d+) (\d+)", output):
        statuses[status] = statuses.get(status, 0) + int(number)
    sample = re.search(r"SAMPLE (.*)", output)
    count = int(requests.group(1))
    duration = int(requests.group(2)) / 1e6
    return WrkResult(
        requests=count,
        duration_s=round(duration, 2),
        rps=round(count / duration, 1) if duration else 0.0,
        p50_ms=round(float(latency.group(1)) / 1000, 2),
        p99_ms=round(float(latency.group(2)) / 1000, 2),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        statuses=statuses,
        sample_error=sample.group(1)[:300] if sample else "",
    )
