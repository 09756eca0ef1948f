"""Content-addressed objects in an S3 bucket: AWS S3, MinIO or any S3-compatible server.

Content with SHA-256 ``abcdef…`` is the object ``<prefix>/sha256/ab/cdef…``; keys are built
only from checked digests under a checked prefix. An upload first asks whether the object
is there (``HEAD``): identical content is uploaded once, across runs and users. Up to
:data:`MULTIPART_THRESHOLD` bytes go in one ``PUT`` with a ``Content-MD5`` the server
checks; larger files go in parts of :data:`PART_SIZE`, hashed again as they are read (a file
that changed since it was hashed is never completed) and their size checked afterwards.
Every download is checked against its SHA-256.

Configured the standard way: boto3 reads ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``
(``AWS_SESSION_TOKEN``, ``AWS_PROFILE``), ``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL``
(an S3-compatible server) from the environment. boto3 is imported on first use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labledger.errors import LabledgerError
from labledger.store.blobs import _open_regular
from labledger.store.objects.base import (
    CHUNK,
    ObjectStore,
    VerifyingReader,
    check_digest,
    hash_open_file,
    normalise_prefix,
    write_beside,
)
from labledger.store.objects.errors import (
    BucketNotFoundError,
    ObjectCorruptError,
    ObjectLocationError,
    ObjectMissingError,
    ObjectStoreError,
    SourceChangedError,
)
from labledger.store.objects.s3_client import (
    ABSENT,
    DENIED,
    MULTIPART_THRESHOLD,
    env_endpoint,
    error_code,
    explain,
    s3_client,
    transfer_config,
)

__all__ = ["S3ObjectStore"]

_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


class _Absent(Exception):
    """The object (or the bucket) answered 404."""


class S3ObjectStore(ObjectStore):
    """Content-addressed objects under ``s3://bucket/prefix``.

    :param client: a boto3 S3 client; default one from :func:`s3_client` (the environment).
    :raises ObjectLocationError: the bucket name or the prefix is refused (nothing is contacted).

    >>> store = S3ObjectStore("ledger", "team/artifacts")  # doctest: +SKIP
    >>> sha, size = store.put_file("model.pt")  # doctest: +SKIP
    >>> store.get(sha, "copy/model.pt")  # doctest: +SKIP
    PosixPath('copy/model.pt')
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
        given = f"s3://{bucket}/{prefix}"
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ObjectLocationError(given, f"{bucket!r} is not a bucket name")
        self.bucket = bucket
        self._segments = normalise_prefix(prefix, given)
        self.prefix = "/".join(self._segments)
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client
        self._bucket_seen = False

    @classmethod
    def from_uri(cls, uri: str, *, client: Any = None) -> S3ObjectStore:
        """The store at ``s3://bucket/prefix`` (the prefix may be empty).

        >>> S3ObjectStore.from_uri("s3://ledger/team/artifacts").prefix  # doctest: +SKIP
        'team/artifacts'
        """
        if uri[:5].lower() != "s3://":
            raise ObjectLocationError(uri, "an S3 location starts with s3://")
        rest = uri[5:]
        if "?" in rest or "#" in rest:
            raise ObjectLocationError(uri, "an S3 location holds no query ('?') nor fragment ('#')")
        bucket, _, prefix = rest.partition("/")
        return cls(bucket, prefix, client=client)

    # -- the client and what its failures mean --------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client (made from the environment on first use)."""
        if self._client is None:
            try:
                self._client = s3_client()
            except ModuleNotFoundError as e:
                problem = (
                    f"{e.name} is not installed. Install the server extra: pip install 'labledger[server]'"
                )
                raise ObjectStoreError(self.uri, env_endpoint(), problem, e) from None
            except Exception as e:  # a malformed AWS_ENDPOINT_URL, an unknown AWS_PROFILE...
                raise ObjectStoreError(self.uri, env_endpoint(), f"no S3 client: {e}", e) from None
        return self._client

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return str(self.client.meta.endpoint_url)

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Turns a boto3 failure into the labledger error that explains it (404 into :class:`_Absent`)."""
        try:
            yield
        except LabledgerError:
            raise
        except Exception as e:
            if error_code(e) in ABSENT:
                raise _Absent(action) from None
            failure = explain(e, action, self.uri, self.endpoint, self.bucket)
            if failure is None:
                raise
            raise failure from None

    def check(self) -> None:
        """Check that the endpoint answers and the bucket exists.

        :raises ObjectStoreUnreachableError: the endpoint does not answer.
        :raises BucketNotFoundError: the bucket does not exist.
        :raises ObjectStoreError: the credentials are refused, or another failure.
        """
        try:
            with self._calling(f"checking the bucket {self.bucket}"):
                self.client.head_bucket(Bucket=self.bucket)
        except _Absent:
            raise BucketNotFoundError(self.uri, self.endpoint, self.bucket) from None
        self._bucket_seen = True

    def _probe_bucket(self) -> None:
        """After a 404 for an object: raise :class:`BucketNotFoundError` if the bucket is missing."""
        if self._bucket_seen:
            return
        try:
            self.check()
        except ObjectStoreError as e:
            if error_code(e.error) not in DENIED:
                raise  # (credentials that may not list the bucket cannot tell: assume it is there)

    # -- content ------------------------------------------------------------------------

    def key_for(self, sha256: str) -> str:
        """The object key of content: ``<prefix>/sha256/ab/cdef…``.

        :raises InvalidDigestError: ``sha256`` is not a SHA-256 hex digest.
        """
        sha = check_digest(sha256)
        return "/".join([*self._segments, "sha256", sha[:2], sha[2:]])

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with self._calling(f"looking up {key}"):
                head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
                return head
        except _Absent:
            self._probe_bucket()
            return None

    def _present(self, key: str, sha256: str, size: int) -> bool:
        """Whether the object is there, of this size and stored as this content (else it is replaced)."""
        head = self._head(key)
        return (
            head is not None
            and head.get("ContentLength") == size
            and head.get("Metadata", {}).get("sha256") == sha256
        )

    def exists(self, sha256: str) -> bool:
        """Whether content with this SHA-256 is stored.

        :raises BucketNotFoundError: the bucket does not exist.

        >>> store.exists("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")  # doctest: +SKIP
        True
        """
        return self._head(self.key_for(sha256)) is not None

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data`` unless it is there already; returns ``(sha256, size)``.

        >>> store.put_bytes(b"test")  # doctest: +SKIP
        ('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 4)
        """
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        key = self.key_for(sha)
        if self._present(key, sha, len(data)):
            return sha, len(data)
        if len(data) > MULTIPART_THRESHOLD:
            self._upload_parts(key, sha, len(data), io.BytesIO(data), "bytes")
            return sha, len(data)
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with self._calling(f"uploading {key}"):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, Metadata={"sha256": sha}
            )
        return sha, len(data)

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a regular file (or a symlink to one) unless its content is there already;
        returns ``(sha256, size)``.

        :raises ArtifactSourceError: ``path`` is not a regular file.
        :raises SourceChangedError: the file changed while it was uploaded (nothing was stored).
        :raises ObjectStoreError: the store could not take it (the subclass says why).

        >>> store.put_file("model.pt")  # doctest: +SKIP
        ('5d41402abc4b2a76b9719d911017c592...', 48213)
        """
        fd = _open_regular(Path(path))
        with os.fdopen(fd, "rb") as source:
            first = source.read(MULTIPART_THRESHOLD + 1)
            if len(first) <= MULTIPART_THRESHOLD:
                return self.put_bytes(first)
            sha, rest = hash_open_file(source, hashlib.sha256(first))
            size = len(first) + rest
            key = self.key_for(sha)
            if not self._present(key, sha, size):
                source.seek(0)
                self._upload_parts(key, sha, size, source, os.fspath(path))
            return sha, size

    def _upload_parts(self, key: str, sha: str, size: int, source: io.BufferedIOBase, name: str) -> None:
        reader = _HashingSource(source, sha, size, name)
        with self._calling(f"uploading {key}"):
            extra = {"Metadata": {"sha256": sha}}
            self.client.upload_fileobj(reader, self.bucket, key, ExtraArgs=extra, Config=transfer_config())
        head = self._head(key)
        stored = None if head is None else head.get("ContentLength")
        if stored != size:
            raise ObjectStoreError(
                self.uri,
                self.endpoint,
                f"the upload of {self._where(key)} left {stored} bytes there, not {size:,}. Store it again",
            )

    def open(self, sha256: str) -> io.BufferedReader:
        """A reader of the content; reading it to the end checks its SHA-256.

        :raises ObjectMissingError: nothing is stored under ``sha256``.
        :raises ObjectCorruptError: (when the end is read) the bytes do not hash to ``sha256``.

        >>> with store.open(sha) as f:  # doctest: +SKIP
        ...     data = f.read()
        """
        key = self.key_for(sha256)
        try:
            with self._calling(f"reading {key}"):
                response = self.client.get_object(Bucket=self.bucket, Key=key)
        except _Absent:
            self._probe_bucket()
            raise ObjectMissingError(sha256, self._where(key)) from None
        body = response["Body"]

        def read(n: int) -> bytes:
            with self._calling(f"reading {key}"):
                data: bytes = body.read(n)
                return data

        raw = VerifyingReader(read, body.close, sha256, response.get("ContentLength"), self._where(key))
        return io.BufferedReader(raw, CHUNK)

    def get(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Download the content to ``dest`` (in parts when large): written beside it, checked
        against its SHA-256, then renamed into place. Returns ``dest``.

        :raises ObjectMissingError: nothing is stored under ``sha256``.
        :raises ObjectCorruptError: the stored bytes do not hash to ``sha256``; ``dest`` is untouched.

        >>> store.get(sha, "downloads/model.pt")  # doctest: +SKIP
        PosixPath('downloads/model.pt')
        """
        key = self.key_for(sha256)
        config = transfer_config()

        def fill(out: io.BufferedRandom) -> None:
            try:
                with self._calling(f"downloading {key}"):
                    self.client.download_fileobj(self.bucket, key, out, Config=config)
            except _Absent:
                self._probe_bucket()
                raise ObjectMissingError(sha256, self._where(key)) from None
            out.flush()
            out.seek(0)
            actual, size = hash_open_file(out)
            if actual != sha256:
                problem = f"its {size:,} bytes hash to {actual[:12]}"
                raise ObjectCorruptError(sha256, self._where(key), problem)

        return write_beside(Path(dest), fill)


class _HashingSource:
    """Hands a file to the uploader front to back (it has no ``seek``: the uploader reads it in
    order) and, at its end, raises :class:`SourceChangedError` unless what was handed is the
    content hashed before: the upload is then abandoned before it completes."""

    def __init__(self, file: io.BufferedIOBase, sha256: str, size: int, name: str) -> None:
        self._file = file
        self._sha256 = sha256
        self._size = size
        self._name = name
        self._digest = hashlib.sha256()
        self._read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self._digest.update(data)
        self._read += len(data)
        if (n < 0 or len(data) < n) and (self._read, self._digest.hexdigest()) != (self._size, self._sha256):
            raise SourceChangedError(self._name, self._sha256)
        return data
