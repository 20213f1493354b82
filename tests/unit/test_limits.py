"""The servers raise their open-files limit (every SSE stream holds a socket)."""

from __future__ import annotations

import resource

from common.limits import raise_open_files_limit


def test_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        now = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == now
        assert now > lowered or hard == lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, now), hard))
