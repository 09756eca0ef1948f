"""Artifact bytes kept by content: in an S3 bucket (AWS S3, MinIO, any S3-compatible server)
or in a folder, each content once, every read checked against its SHA-256.

>>> from labledger.store.objects import open_objects
>>> store = open_objects("s3://ledger/team/artifacts")  # doctest: +SKIP
>>> sha, size = store.put_file("model.pt")  # doctest: +SKIP
>>> store.get(sha, "copy/model.pt")  # doctest: +SKIP
PosixPath('copy/model.pt')

S3 is configured the standard way, from the environment: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` and, for an S3-compatible server,
``AWS_ENDPOINT_URL``. boto3 (the ``server`` extra) is imported on first use.
"""

from __future__ import annotations

from typing import Any

from labledger.store.location import local_folder, scheme
from labledger.store.objects.base import ObjectStore, check_digest, normalise_prefix
from labledger.store.objects.errors import (
    BucketNotFoundError,
    InvalidDigestError,
    ObjectCorruptError,
    ObjectLocationError,
    ObjectMissingError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
    SourceChangedError,
)
from labledger.store.objects.local import FileObjectStore
from labledger.store.objects.s3 import S3ObjectStore
from labledger.store.objects.s3_client import MULTIPART_THRESHOLD, PART_SIZE, s3_client

__all__ = [
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "BucketNotFoundError",
    "FileObjectStore",
    "InvalidDigestError",
    "ObjectCorruptError",
    "ObjectLocationError",
    "ObjectMissingError",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnreachableError",
    "S3ObjectStore",
    "SourceChangedError",
    "check_digest",
    "normalise_prefix",
    "open_objects",
    "s3_client",
]


def open_objects(uri: str, *, client: Any = None) -> ObjectStore:
    """The object store at ``uri``: ``s3://bucket/prefix``, or a ``file:`` URI or folder path
    (in the layout of a local store's ``artifacts`` folder). Nothing is contacted yet.

    :param client: for S3, a boto3 S3 client; default one made from the environment.
    :raises ObjectLocationError: the URI, its bucket or its prefix is refused.

    >>> open_objects("s3://ledger/team/artifacts")  # doctest: +SKIP
    <labledger S3ObjectStore s3://ledger/team/artifacts>
    >>> open_objects("file:///srv/ledger/artifacts")  # doctest: +SKIP
    <labledger FileObjectStore file:///srv/ledger/artifacts>
    """
    if not isinstance(uri, str):
        raise ObjectLocationError(repr(uri), f"the location must be a string, not {type(uri).__name__}")
    if not uri.strip():
        raise ObjectLocationError(uri, "the location is empty")
    kind = scheme(uri)
    if kind == "s3":
        return S3ObjectStore.from_uri(uri, client=client)
    if kind in (None, "file"):
        folder = local_folder(uri)
        if folder is None:
            raise ObjectLocationError(uri, "a file: URI names a folder on this machine (file:///folder)")
        return FileObjectStore(folder)
    raise ObjectLocationError(uri, f"{kind!r} locations are not supported")
