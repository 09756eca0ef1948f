"""The boto3 side of the S3 store: the client, its limits, and what its failures mean.

boto3 is imported inside these functions only, on first use.
"""

from __future__ import annotations

import os
from typing import Any

from labledger.store.objects.errors import (
    BucketNotFoundError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
)

__all__ = [
    "ABSENT",
    "CONNECT_TIMEOUT",
    "DENIED",
    "MAX_ATTEMPTS",
    "MAX_CONCURRENCY",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "READ_TIMEOUT",
    "error_code",
    "explain",
    "s3_client",
    "transfer_config",
]

#: Content larger than this is uploaded (and downloaded) in parts.
MULTIPART_THRESHOLD = 8 << 20
#: The size of each part (S3 allows 5 MiB to 5 GiB, and at most 10,000 parts).
PART_SIZE = 8 << 20
#: Parts transferred at once.
MAX_CONCURRENCY = 8
#: Seconds to wait for a connection, and for each read from one.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
#: Attempts per request (botocore's ``standard`` retry mode), unless ``AWS_MAX_ATTEMPTS`` says.
MAX_ATTEMPTS = 3

#: Error codes of an object (or bucket) that is not there.
ABSENT = frozenset({"404", "NoSuchKey", "NotFound"})
#: Error codes of refused credentials or permissions.
DENIED = frozenset(
    {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)


def s3_client(
    endpoint_url: str | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    max_attempts: int | None = None,
) -> Any:
    """A boto3 S3 client configured from the environment, with bounded retries and timeouts.

    :param endpoint_url: the server; default ``AWS_ENDPOINT_URL`` (or AWS S3 itself).
    :param max_attempts: attempts per request; default ``AWS_MAX_ATTEMPTS``, else :data:`MAX_ATTEMPTS`.

    >>> client = s3_client("http://127.0.0.1:9000", max_attempts=1)  # doctest: +SKIP
    """
    import boto3
    from botocore.config import Config

    retries: dict[str, Any] = {}
    if "AWS_RETRY_MODE" not in os.environ:
        retries["mode"] = "standard"
    if max_attempts is not None or "AWS_MAX_ATTEMPTS" not in os.environ:
        retries["total_max_attempts"] = MAX_ATTEMPTS if max_attempts is None else max_attempts
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries=retries,
        max_pool_connections=max(10, MAX_CONCURRENCY + 2),
        user_agent_extra="labledger",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def transfer_config() -> Any:
    """How large content moves: in parts of :data:`PART_SIZE`, :data:`MAX_CONCURRENCY` at once."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=PART_SIZE,
        max_concurrency=MAX_CONCURRENCY,
        preferred_transfer_client="classic",
    )


def env_endpoint() -> str:
    """The endpoint the environment names (``AWS S3`` when none)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"


def error_code(error: BaseException | None) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def explain(error: Exception, action: str, uri: str, endpoint: str, bucket: str) -> ObjectStoreError | None:
    """The labledger error that explains a boto3 failure while doing ``action`` (``None`` when
    ``error`` is not one of boto3's)."""
    from botocore import exceptions as bx
    from s3transfer.exceptions import RetriesExceededError

    if isinstance(error, RetriesExceededError) and isinstance(error.last_exception, Exception):
        error = error.last_exception
    if isinstance(error, bx.ConnectionError | bx.HTTPClientError):
        return ObjectStoreUnreachableError(uri, endpoint, f"{action}: {error}", error)
    code = error_code(error)
    if code == "NoSuchBucket":
        return BucketNotFoundError(uri, endpoint, bucket, error)
    if code in DENIED:
        return ObjectStoreError(
            uri,
            endpoint,
            f"{action} was refused ({code}). Check the credentials (AWS_ACCESS_KEY_ID, "
            f"AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and that they may read and write {uri}",
            error,
        )
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return ObjectStoreError(
            uri,
            endpoint,
            f"{action}: no usable credentials ({error}). Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
            error,
        )
    if isinstance(error, bx.ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return ObjectStoreError(uri, endpoint, f"{action} failed: {code} {message}".strip(), error)
    if isinstance(error, bx.BotoCoreError):
        return ObjectStoreError(uri, endpoint, f"{action} failed: {error}", error)
    return None
