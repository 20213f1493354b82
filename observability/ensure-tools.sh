#!/bin/sh
# Installs the tools the observability tests and load tests run, when any is missing:
# prometheus + promtool (Debian package `prometheus`), wrk, docker-compose (validates
# docker-compose.yml without a Docker engine), redis-benchmark (Debian `redis-tools`, the bench's
# Redis phase), chromium (the browser tests of tests/web drive Debian's build through Playwright;
# nothing downloads a browser of its own). Idempotent and quiet. `make tools` runs it (so do `.ci/run`, before `make check`,
# and `make bench`); the test targets do not.
# Needs root or password-less sudo on a Debian/Ubuntu machine; elsewhere it says what is missing.
set -eu

missing=""
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v redis-benchmark >/dev/null 2>&1 || missing="$missing redis-tools"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "ensure-tools: missing:$missing (install them as root: apt-get install$missing)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: missing:$missing and no apt-get here; install them by hand" >&2
    exit 1
fi

echo "ensure-tools: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$as_root apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The package enables a system Prometheus service where systemd runs; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
