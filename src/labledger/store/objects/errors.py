"""Errors of the object stores; each derives from the matching :mod:`labledger.errors` class.

Every failure of an object store (unreachable endpoint, missing bucket, refused
credentials, damaged object) is one of these, never a raw ``botocore`` exception.
"""

from __future__ import annotations

from labledger.errors import ArtifactCorruptError, LabledgerError, StoreError

__all__ = [
    "BucketNotFoundError",
    "InvalidDigestError",
    "ObjectCorruptError",
    "ObjectLocationError",
    "ObjectMissingError",
    "ObjectStoreError",
    "ObjectStoreUnreachableError",
    "SourceChangedError",
]


class ObjectLocationError(StoreError, ValueError):
    """An artifact store URI, bucket or prefix is refused (nothing was contacted).

    ``uri`` is the location given and ``reason`` what is wrong with it.
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(
            uri,
            f"not a usable artifact store location: {reason}. Give s3://bucket/prefix (a prefix of "
            "plain segments separated by single '/', like 'team/artifacts') or file:///folder.",
        )


class InvalidDigestError(LabledgerError, ValueError):
    """A content address is not a SHA-256 hex digest (64 lowercase hexadecimal characters)."""

    def __init__(self, value: object) -> None:
        self.value = value
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        super().__init__(f"not a SHA-256 hex digest: {shown} (64 lowercase hexadecimal characters expected)")


class ObjectStoreError(StoreError):
    """An object store could not be used: ``uri`` the store, ``endpoint`` the server it was
    reached through, ``problem`` what went wrong; ``error`` the underlying exception, if any."""

    def __init__(self, uri: str, endpoint: str, problem: str, error: BaseException | None = None) -> None:
        self.uri = uri
        self.endpoint = endpoint
        self.error = error
        super().__init__(f"{uri} (endpoint {endpoint})", problem)


class ObjectStoreUnreachableError(ObjectStoreError):
    """The object store's endpoint did not answer (refused, timed out, dropped), retries included."""

    def __init__(self, uri: str, endpoint: str, detail: str, error: BaseException | None = None) -> None:
        super().__init__(
            uri,
            endpoint,
            f"the endpoint cannot be reached ({detail}). Check that the server is up and that "
            "AWS_ENDPOINT_URL names it (unset it for AWS S3 itself).",
            error,
        )


class BucketNotFoundError(ObjectStoreError):
    """The store's bucket does not exist on its endpoint."""

    def __init__(self, uri: str, endpoint: str, bucket: str, error: BaseException | None = None) -> None:
        self.bucket = bucket
        super().__init__(
            uri,
            endpoint,
            f"the bucket {bucket!r} does not exist there. Create it (aws s3 mb s3://{bucket}), or "
            "point AWS_ENDPOINT_URL at the server that holds it.",
            error,
        )


class ObjectCorruptError(ArtifactCorruptError):
    """A stored object's bytes do not hash to the SHA-256 it is stored under.

    ``sha256`` is the content it should hold, ``path`` the object (``s3://…`` or a file),
    ``problem`` what was found. Nothing was written where it was to be copied.
    """

    def __init__(self, sha256: str, path: str, problem: str) -> None:
        self.name = sha256[:12]
        self.sha256 = sha256
        self.path = path
        self.problem = problem
        LabledgerError.__init__(
            self,
            f"stored object {path} is damaged: {problem}; it should hold content {sha256[:12]}. "
            "Nothing was copied from it. Store the artifact again (an upload of the same content "
            "replaces a damaged object) or restore the object from a backup.",
        )


class ObjectMissingError(ObjectCorruptError, LookupError):
    """No object is stored under a SHA-256 the caller expected to find."""

    def __init__(self, sha256: str, path: str) -> None:
        self.name = sha256[:12]
        self.sha256 = sha256
        self.path = path
        self.problem = "it is missing"
        LabledgerError.__init__(
            self,
            f"no stored object holds content {sha256[:12]} ({path}). Store the artifact again, "
            "or restore the object from a backup.",
        )


class SourceChangedError(LabledgerError):
    """A file changed while it was being stored; nothing was stored for it.

    ``path`` is the file, ``sha256`` its content when it was first read.
    """

    def __init__(self, path: str, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256
        super().__init__(
            f"{path} changed while it was being stored (its content no longer hashes to "
            f"{sha256[:12]}); nothing was stored for it. Store it again once it is no longer written to."
        )
