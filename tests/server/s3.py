"""An S3 server for tests: moto's, in this process, on a loopback port the system picks.

>>> with moto_s3(tmp_path) as s3:            # doctest: +SKIP
...     bucket = s3.new_bucket()
...     s3.client().list_objects_v2(Bucket=bucket)
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: Dummy credentials: moto accepts any.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: Settings of the developer's own environment that would change what the tests see.
CLEARED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@dataclass
class S3Server:
    """A running S3 server: ``endpoint`` its URL."""

    endpoint: str
    server: Any = None  # moto's ThreadedMotoServer

    def stop(self) -> None:
        """Stop answering (connections to the endpoint are refused); :meth:`start` serves again."""
        self.server.stop()

    def start(self) -> None:
        """Serve again on the same port, with the buckets and objects held before."""
        from moto.server import ThreadedMotoServer

        port = int(self.endpoint.rsplit(":", 1)[1])
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client of this server (``config``: :class:`botocore.config.Config` options)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client("s3", endpoint_url=self.endpoint, config=Config(**config))

    def new_bucket(self, name: str = "labledger") -> str:
        """Create a bucket of a name no other test uses; returns the name."""
        bucket = f"{name}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@contextlib.contextmanager
def moto_s3(folder: Path) -> Iterator[S3Server]:
    """Run moto's S3 server on 127.0.0.1 with dummy credentials, ``AWS_ENDPOINT_URL`` naming it
    and no AWS configuration files (``folder`` holds their empty stand-ins); the environment
    is restored when the block ends."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        for name in CLEARED:
            env.delenv(name, raising=False)
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        env.setenv("AWS_CONFIG_FILE", str(folder / "aws-config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "aws-credentials"))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        s3 = S3Server("", server)
        try:
            host, port = server.get_host_and_port()
            s3.endpoint = f"http://{host}:{port}"
            env.setenv("AWS_ENDPOINT_URL", s3.endpoint)
            yield s3
        finally:
            with contextlib.suppress(Exception):  # stopped already by a test of an outage
                s3.server.stop()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def count_requests(client: Any) -> Counter[str]:
    """A counter of the S3 operations ``client`` sends from now on (``{"PutObject": 1, ...}``)."""
    sent: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    client.meta.events.register("before-call.s3", count)
    return sent
