"""The pages (`web/`): static HTML, CSS and ES modules served at `/`, outside /api/v1.

Only GET and HEAD of files under the web root; every answer carries a strict
Content-Security-Policy (scripts, styles, connections: this origin only, no inline script, no
framing) and `nosniff`. HTML is `no-cache` (revalidated with its ETag on every load, so a new
release is picked up at once); the modules, the stylesheet and images are public and cacheable
for a few minutes (there is no build step that could put a content hash in their names).
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

DEFAULT_WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
ASSET_CACHE = "public, max-age=300"
PAGE_CACHE = "no-cache"
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class WebPages:
    """The static site; a path it does not have is the gateway's problem+json 404."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = StaticFiles(directory=self.root, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.root.is_dir():
            raise HTTPException(status_code=404)
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                html = headers.get("content-type", "").startswith("text/html")
                headers["cache-control"] = PAGE_CACHE if html else ASSET_CACHE
            await send(message)

        await self.files(scope, receive, send_with_headers)
