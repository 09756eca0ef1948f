"""Secrets out of recorded command lines and URLs (used through :mod:`labledger.lineage.capture`).

A value is replaced by ``***`` and its flag or name is kept, so a reader (and
``labledger reproduce``) sees where a secret has to be supplied.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

__all__ = ["MASK", "is_secret_name", "redact_argv", "redact_url"]

MASK = "***"
#: Words of a flag or parameter name that mark its value as a secret. ``key`` alone is
#: not one in a command line (``--key val_acc``) but is in a URL query (``?key=AIza…``).
_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey",
        "credential", "credentials", "auth", "authorization", "cookie", "privatekey",
        "accesskey", "secretkey", "clientsecret", "authtoken", "accesstoken", "sessiontoken",
    }
)  # fmt: skip
_URL_WORDS = _WORDS | {"key", "sig", "signature"}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
_ASSIGNMENT = re.compile(r"^\+{0,2}[A-Za-z_][\w.\-/]*=")


def _words(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name.lstrip("-+"))
    return [w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w]


def is_secret_name(name: str, words: Iterable[str] = _WORDS) -> bool:
    """Whether a flag, parameter or variable name says its value is a secret.

    >>> is_secret_name("--api-key"), is_secret_name("--max-tokens"), is_secret_name("-p")
    (True, False, False)
    """
    vocabulary = words if isinstance(words, frozenset) else frozenset(words)
    parts = _words(name)
    pairs = (a + b for a, b in itertools.pairwise(parts))
    return any(w in vocabulary for w in parts) or any(p in vocabulary for p in pairs)


def _redact_one_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    path, hash_, fragment = tail.partition("#")
    path, question, query = path.partition("?")
    if question:
        fields = []
        for field in re.split(r"([&;])", query):
            name, eq, _value = field.partition("=")
            fields.append(f"{name}={MASK}" if eq and is_secret_name(name, _URL_WORDS) else field)
        query = "".join(fields)
    return f"{scheme}://{authority}{path}{question}{query}{hash_}{fragment}"


def redact_url(text: str) -> str:
    """Mask credentials in every URL in ``text``: ``user:password@``, ``token@`` and secret query values.

    >>> redact_url("postgres://ada:s3cret@db.example.org/runs")
    'postgres://ada:***@db.example.org/runs'
    >>> redact_url("https://ghp_abc@github.com/x?access_token=t&page=2")
    'https://***@github.com/x?access_token=***&page=2'
    """
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _redact_one_url(m.group()), text)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A command line with secret values masked, their flags kept.

    Masked: the value of a flag whose name says secret (``--api-key=…``, ``--token …``,
    ``--db-password …``; not ``-p``), of a ``name=value`` argument with such a name
    (``db.password=…``), and credentials in URLs anywhere.

    >>> redact_argv(["train.py", "--api-key=abc", "--token", "xyz", "-p", "8", "--lr", "0.1"])
    ['train.py', '--api-key=***', '--token', '***', '-p', '8', '--lr', '0.1']
    """
    out: list[str] = []
    mask_next = False
    for raw in argv:
        arg = str(raw)
        if mask_next:
            mask_next = False
            if not arg.startswith("--"):
                out.append(MASK)
                continue
        if arg.startswith("-") and len(arg) > 1:
            name, eq, _value = arg.partition("=")
            if is_secret_name(name):
                if eq:
                    out.append(f"{name}={MASK}")
                else:
                    out.append(arg)
                    mask_next = True
                continue
        elif _ASSIGNMENT.match(arg):
            name, _, _value = arg.partition("=")
            if is_secret_name(name):
                out.append(f"{name}={MASK}")
                continue
        out.append(redact_url(arg))
    return out
