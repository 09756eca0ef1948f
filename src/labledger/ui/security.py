"""Headers every dashboard response carries, as a small ASGI middleware.

Pages may only run the dashboard's own scripts (``Content-Security-Policy``), are never
framed, and a browser never guesses a content type; artifacts shown inline (an SVG plot)
are sandboxed so that a script inside one can never run.

>>> app = SecurityHeaders(create_app("/tmp/ledger"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARTIFACT_POLICY", "PAGE_POLICY", "SecurityHeaders"]

#: Pages: scripts, styles, images and requests only from the dashboard itself.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Artifact bytes: nothing inside may run or load anything.
ARTIFACT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"

Scope = dict[str, Any]


class SecurityHeaders:
    """Adds ``Content-Security-Policy``, ``X-Content-Type-Options``, ``X-Frame-Options`` and
    ``Referrer-Policy`` to every response of the wrapped ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        policy = ARTIFACT_POLICY if "/artifacts/" in path else PAGE_POLICY

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", policy.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
