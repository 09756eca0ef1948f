"""A browser's way into a labledger server's dashboard: ``/login`` and ``/logout``.

``GET /login`` shows a form asking for an API token; ``POST /login`` checks it and keeps it
in the :data:`~labledger.server.auth.COOKIE` cookie (HttpOnly, SameSite=Strict, Secure when
the server is reached over TLS), which :class:`~labledger.server.auth.TokenAuth` accepts
for ``GET`` and ``HEAD`` only: the dashboard reads with it, and no page can make the browser
write with it. ``/logout`` forgets the cookie.

>>> routes = login_routes(accounts.authenticate)  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from labledger.server.accounts import Principal
from labledger.server.auth import COOKIE

__all__ = ["LOGIN_PATHS", "SESSION_SECONDS", "login_routes"]

#: The paths of this module, answered without a token.
LOGIN_PATHS = frozenset({"/login", "/logout"})
#: How long a browser keeps its token.
SESSION_SECONDS = 7 * 24 * 3600
_MAX_FORM = 4096

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>labledger: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.4rem;margin:.4rem 0;box-sizing:border-box}}.error{{color:#b00020}}</style>
</head><body><h1>labledger</h1>
<p>Sign in with an API token (<code>labledger token create --scope read ...</code> makes one).</p>
{error}<form method="post" action="/login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<input type="hidden" name="next" value="{next}">
<input type="submit" value="Sign in"></form></body></html>
"""


def _local(target: str | None) -> str:
    """``target`` when it is a path of this server, else ``/`` (no redirect elsewhere)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(next_path: str, error: str = "", status: int = 200) -> Response:
    shown = f'<p class="error">{html.escape(error)}</p>\n' if error else ""
    body = _PAGE.format(error=shown, next=html.escape(_local(next_path), quote=True))
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def login_routes(authenticate: Callable[[str], Principal | None]) -> list[BaseRoute]:
    """The ``/login`` and ``/logout`` routes; ``authenticate(token)`` checks a token (it runs in a thread).

    >>> app = Starlette(routes=[*login_routes(accounts.authenticate), ...])  # doctest: +SKIP
    """

    async def show(request: Request) -> Response:
        return _page(request.query_params.get("next", "/"))

    async def sign_in(request: Request) -> Response:
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > _MAX_FORM:
                return _page("/", "The form is too large.", 413)
        form = parse_qs(body.decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        next_path = _local((form.get("next") or ["/"])[0])
        principal = await run_in_threadpool(authenticate, token) if token else None
        if principal is None:
            return _page(next_path, "That token is unknown, revoked or expired.", 401)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["GET", "POST"]),
    ]
