"""Authentication of every request to a labledger server, as a small ASGI middleware.

:class:`TokenAuth` reads the API token from ``Authorization: Bearer <token>`` (or
``X-Labledger-Token: <token>``; for ``GET`` and ``HEAD`` only, also the browser cookie
:data:`COOKIE` that ``/login`` sets) and asks an injected ``authenticate(token)`` callable who
it belongs to (:func:`labledger.server.accounts.authenticator` gives one on PostgreSQL).
Without a valid token a request answers 401 (a browser asking for a page is sent to the login
page instead, when there is one); a token whose scope is ``read`` may only ``GET`` and
``HEAD``, and ``POST`` under the ``safe_paths`` prefixes (reads sent as ``POST``); anything
else answers 403. Only the health check (:data:`PUBLIC_PATHS`) is open.
The principal is put in ``scope["state"]["principal"]`` (``request.state.principal`` in
Starlette). Inside a route, :func:`require` checks the principal's right on an experiment:
an experiment they may not read answers 404, exactly as one that does not exist.

>>> from labledger.server.accounts import authenticator
>>> app = TokenAuth(create_app(...), authenticate=authenticator(pool.connection))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from labledger.server.accounts import Principal, allowed

__all__ = [
    "COOKIE",
    "EXCEPTION_HANDLERS",
    "PUBLIC_PATHS",
    "SAFE_METHODS",
    "AccessDenied",
    "TokenAuth",
    "access_denied_response",
    "principal_of",
    "require",
]

log = logging.getLogger(__name__)

#: Paths answered without a token.
PUBLIC_PATHS = frozenset({"/api/health"})
#: Methods a ``read`` token may use; every other method needs a ``write`` (or ``admin``) token.
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: The cookie a browser keeps its token in (sent with ``GET`` and ``HEAD`` only: no forged writes).
COOKIE = "labledger_token"
#: Longest token header read (tokens are 46 characters).
MAX_TOKEN_LENGTH = 200
#: Successful lookups remembered at most (the oldest are forgotten first).
CACHE_SIZE = 1024

Scope = dict[str, Any]
Authenticate = Callable[[str], "Principal | Awaitable[Principal | None] | None"]


class AccessDenied(HTTPException):
    """A request may not do what it asked: 403, or 404 when it may not even see the experiment.

    Render it as JSON with :data:`EXCEPTION_HANDLERS` (Starlette's own handler would answer
    the same status in plain text).
    """


async def access_denied_response(request: Request, exc: Exception) -> Response:
    """The JSON answer ``{"error": ...}`` of an :class:`AccessDenied`."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


#: Pass to ``Starlette(exception_handlers=...)`` so :func:`require` answers JSON.
EXCEPTION_HANDLERS = {AccessDenied: access_denied_response}


def principal_of(request: Request) -> Principal:
    """The principal :class:`TokenAuth` found for the request; 401 when there is none
    (a route outside the middleware, or a public path).

    >>> principal_of(request).user  # doctest: +SKIP
    'alice'
    """
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise AccessDenied(401, "authentication required", {"WWW-Authenticate": "Bearer"})
    return principal


def require(request: Request, experiment: str, action: str) -> Principal:
    """Raise :class:`AccessDenied` unless the request's principal may ``action`` (``read``,
    ``write`` or ``admin``) the experiment; return the principal.

    An experiment the principal may not read answers 404 (as an unknown one would: its
    existence is not revealed); one they may read but not ``action`` answers 403.

    >>> async def delete_run(request):  # doctest: +SKIP
    ...     require(request, request.path_params["experiment"], "write")
    """
    principal = principal_of(request)
    if allowed(principal, experiment, action):
        return principal
    if not allowed(principal, experiment, "read"):
        raise AccessDenied(404, f"no experiment {experiment!r}")
    if allowed(replace(principal, scope="admin"), experiment, action):
        why = f"this token's scope is {principal.scope}"
    else:
        why = f"no {action} permission"
    raise AccessDenied(403, f"{why}: cannot {action} experiment {experiment!r}")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    from http.cookies import SimpleCookie

    text = _header(scope, b"cookie")
    if not text:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(text)
    except Exception:  # a malformed cookie header: no token from it
        return None
    morsel = jar.get(name)
    return morsel.value.strip() or None if morsel is not None else None


def token_of(scope: Scope, cookie: bool = False) -> str | None:
    """The token of a request: ``Authorization: Bearer <token>`` or ``X-Labledger-Token``, else
    (when ``cookie``) the :data:`COOKIE` cookie."""
    authorization = _header(scope, b"authorization")
    if authorization:
        kind, _, value = authorization.strip().partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return value.strip()
    token = _header(scope, b"x-labledger-token")
    if token and token.strip():
        return token.strip()
    return _cookie(scope, COOKIE) if cookie else None


def _wants_page(scope: Scope) -> bool:
    """Whether a request is a browser asking for a page (``GET``, HTML accepted, not the API)."""
    accept = _header(scope, b"accept") or ""
    path: str = scope.get("path", "")
    return scope.get("method") == "GET" and "text/html" in accept and not path.startswith("/api/")


async def _redirect(send: Any, location: str) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


#: The ``kind`` of the middleware's answers, by status.
KINDS = {401: "AuthenticationRequired", 403: "PermissionDenied", 503: "ServiceUnavailable"}


async def _answer(send: Any, status: int, error: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"error": error, "kind": KINDS.get(status, "Error")}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start, *headers]})
    await send({"type": "http.response.body", "body": body})


class TokenAuth:
    """Authenticates every HTTP and WebSocket request of the wrapped ASGI app by its API token.

    :param authenticate: ``authenticate(token) -> Principal | None`` (a plain function runs in a
        worker thread; a coroutine function is awaited).
    :param cache_ttl: seconds a successful lookup is remembered (by the token's hash); a revoked
        token may work that long after revocation. ``0`` asks the database every time.
    :param public: paths answered without a token.
    :param safe_paths: path prefixes under which a ``read`` token may also ``POST`` (reads
        whose arguments travel in the body, like ``/api/v1/read/``).
    :param login_path: where a browser asking for a page without a token is sent (``None``:
        it gets 401 as any other request).

    >>> app = TokenAuth(app, authenticate=authenticator(pool.connection), cache_ttl=5)  # doctest: +SKIP
    """

    def __init__(
        self,
        app: Any,
        authenticate: Authenticate,
        cache_ttl: float = 5.0,
        public: frozenset[str] = PUBLIC_PATHS,
        safe_paths: tuple[str, ...] = (),
        login_path: str | None = None,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.cache_ttl = cache_ttl
        self.public = public
        self.safe_paths = safe_paths
        self.login_path = login_path
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def _safe(self, method: str, path: str) -> bool:
        return method in SAFE_METHODS or (method == "POST" and path.startswith(self.safe_paths))

    async def _lookup(self, token: str) -> Principal | None:
        key = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and now - cached[0] < self.cache_ttl:
            return cached[1]
        self._cache.pop(key, None)
        if inspect.iscoroutinefunction(self.authenticate):
            principal = await self.authenticate(token)
        else:
            import anyio.to_thread

            principal = await anyio.to_thread.run_sync(self.authenticate, token)
            if inspect.isawaitable(principal):
                principal = await principal
        if principal is not None and self.cache_ttl > 0:
            self._cache[key] = (now, principal)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public:
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        method = "GET" if websocket else scope.get("method", "GET")
        token = token_of(scope, cookie=not websocket and method in SAFE_METHODS)
        if token is None and self.login_path is not None and not websocket and _wants_page(scope):
            from urllib.parse import quote

            await _redirect(send, f"{self.login_path}?next={quote(scope.get('path', '/'), safe='/')}")
            return
        problem = None
        principal = None
        if token is None:
            problem = "authentication required: send an API token as 'Authorization: Bearer <token>'"
        elif len(token) > MAX_TOKEN_LENGTH:
            problem = "invalid API token"
        else:
            try:
                principal = await self._lookup(token)
            except Exception:
                log.exception("cannot check an API token")
                if websocket:
                    await send({"type": "websocket.close", "code": 1011})
                else:
                    await _answer(send, 503, "cannot check the API token now: try again later")
                return
            if principal is None:
                problem = "invalid API token (unknown, revoked or expired)"
        if problem is not None or principal is None:
            if websocket:
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _answer(send, 401, problem or "invalid API token", ((b"www-authenticate", b"Bearer"),))
            return
        if principal.scope == "read" and not self._safe(method, scope.get("path", "")):
            await _answer(send, 403, f"this token's scope is read: it cannot {method}")
            return
        state = {**scope.get("state", {}), "principal": principal}
        await self.app({**scope, "state": state}, receive, send)
