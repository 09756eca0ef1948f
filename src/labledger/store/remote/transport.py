"""HTTP to a labledger server on the standard library: one keep-alive connection per thread.

A connection is reopened in a forked child and after any error; TLS uses the default context
(which honours ``SSL_CERT_FILE``). :meth:`Transport.call` retries connection errors and
5xx answers with jittered back-off until a deadline, and raises a 4xx answer as the labledger
error it names (:func:`labledger.store.remote.errors.error_from_answer`).

>>> t = Transport("https://ledger.example.com:8443")
>>> t.call("GET", "/api/v1/info", deadline=5.0).json()  # doctest: +SKIP
{'api': 1, ...}
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import json
import os
import random
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import labledger
from labledger import settings
from labledger.errors import StoreError
from labledger.store.remote.errors import ServerUnreachableError, error_from_answer

__all__ = ["RETRY_STATUSES", "TIMEOUT", "Answer", "Transport", "is_server_url"]

#: Seconds a connection attempt or a read waits for the server.
TIMEOUT = 30.0
#: Answers retried (then spooled) like a connection error.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_CAP = 2.0

#: The retries' jitter: a generator of its own, never the user's ``random`` stream.
_jitter = random.Random()


def is_server_url(uri: str) -> bool:
    """Whether ``uri`` names a labledger server (``http://`` or ``https://``).

    >>> is_server_url("https://ledger.example.com"), is_server_url("/tmp/ledger")
    (True, False)
    """
    return isinstance(uri, str) and uri[:8].lower().startswith(("http://", "https://"))


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Answer:
    """A server's answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Held:
    """A thread's connection: closed when the thread ends (its thread-local data goes), so no
    socket is left for the garbage collector."""

    __slots__ = ("conn", "pid", "used")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn: http.client.HTTPConnection | None = conn
        self.pid = os.getpid()
        self.used = False

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and self.pid == os.getpid():
            conn.close()

    def __del__(self) -> None:
        self.close()


class Transport:
    """Requests to one labledger server (``https://host:port[/prefix]``; ``http://`` on loopback only).

    :param timeout: seconds a connection attempt or a read waits.
    :raises StoreError: the URL is not a server URL, or is plain HTTP to another machine.
    """

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(url, "not a labledger server URL: give https://host[:port]")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise StoreError(
                url,
                "a server URL holds no user, password, query or fragment: put the token in LABLEDGER_TOKEN",
            )
        if scheme == "http" and not _loopback(parts.hostname):
            raise StoreError(
                url,
                "plain http:// would send the API token unencrypted: use https:// (http:// is for a "
                "server on this machine, 127.0.0.1 or localhost)",
            )
        self.tls = scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{shown_host}:{self.port}{self.prefix}"
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex[:12]
        self._counter = itertools.count(1)
        self._local = threading.local()
        self._context: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"<labledger Transport {self.url}>"

    # -- connections -------------------------------------------------------------------

    def connect(self, timeout: float | None = None) -> http.client.HTTPConnection:
        """A new connection to the server (not yet opened)."""
        if self.tls:
            if self._context is None:
                self._context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout or self.timeout, context=self._context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (reopened in a forked child) and whether it was used before."""
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid() or held.conn is None:
            held = self._local.held = _Held(self.connect())
        assert held.conn is not None
        return held.conn, held.used

    def _drop(self) -> None:
        held = getattr(self._local, "held", None)
        if held is not None:
            held.close()

    def headers(self, write: bool = False, content_type: str | None = None) -> dict[str, str]:
        """The headers of a request: token, user agent, and for writes the request id."""
        out = {"User-Agent": f"labledger/{labledger.__version__}", "Accept": "application/json"}
        token = settings.token()
        if token:
            out["Authorization"] = f"Bearer {token}"
        if write:
            out["X-Labledger-Request"] = f"{self.client_id}:{next(self._counter)}"
        if content_type:
            out["Content-Type"] = content_type
        return out

    # -- requests ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | BinaryIO | None = None,
        content_type: str | None = None,
        *,
        write: bool = False,
        length: int | None = None,
    ) -> Answer:
        """One request on this thread's connection (a kept-alive connection the server closed
        meanwhile is reopened once); any status is returned.

        :raises ServerUnreachableError: no answer (refused, timed out, dropped).
        """
        headers = self.headers(write, content_type)
        if length is not None:
            headers["Content-Length"] = str(length)
        elif body is None and method in ("POST", "PUT"):
            headers["Content-Length"] = "0"
        for attempt in (1, 2):
            conn, used = self._connection()
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                stale = isinstance(e, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError)
                if attempt == 1 and used and stale and not hasattr(body, "read"):
                    continue  # the server closed an idle kept-alive connection: once more, anew
                raise ServerUnreachableError(self.url, _describe(e)) from e
            self._local.held.used = True
            if response.will_close:
                self._drop()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        *,
        deadline: float = 0.0,
        write: bool = False,
        ok: frozenset[int] = frozenset({200}),
    ) -> Answer:
        """A request retried (connection errors, 5xx) for ``deadline`` seconds at most.

        :param ok: statuses returned as they are (others in 4xx raise).
        :raises ServerUnreachableError: still no answer at the deadline (or a 5xx).
        :raises LabledgerError: a 4xx answer, as the error it names.
        """
        end = time.monotonic() + deadline
        delay = 0.1
        while True:
            try:
                answer = self.request(method, path, body, content_type, write=write)
                if answer.status in ok:
                    return answer
                if answer.status not in RETRY_STATUSES:
                    raise error_from_answer(
                        self.url, answer.status, answer.body, settings.token() is not None
                    )
                failure = ServerUnreachableError(self.url, _status_text(answer), answer.status)
            except ServerUnreachableError as e:
                failure = e
            if time.monotonic() + delay > end:
                raise failure
            time.sleep(delay * (0.5 + _jitter.random()))
            delay = min(delay * 2, _BACKOFF_CAP)


def backoff(attempt: int, cap: float = 10.0) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): doubling from 0.2 s up to ``cap``, jittered."""
    return min(cap, 0.2 * 2 ** min(attempt - 1, 16)) * (0.5 + _jitter.random())


def _status_text(answer: Answer) -> str:
    try:
        message = answer.json().get("error")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {answer.status}" + (f": {message}" if message else "")


def _describe(e: BaseException) -> str:
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror or e})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
