"""Content-addressed artifact objects over the real S3 protocol (moto's server on loopback),
and the same store interface over a folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labledger.errors import ArtifactCorruptError, ArtifactSourceError, StoreError
from labledger.store.objects import (
    MULTIPART_THRESHOLD,
    PART_SIZE,
    BucketNotFoundError,
    FileObjectStore,
    InvalidDigestError,
    ObjectCorruptError,
    ObjectLocationError,
    ObjectMissingError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
    S3ObjectStore,
    SourceChangedError,
    open_objects,
    s3_client,
)

from .s3 import S3Server, closed_port, count_requests, moto_s3

pytestmark = pytest.mark.timeout(60)

LARGE = 20 << 20  # over MULTIPART_THRESHOLD: three parts of PART_SIZE


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("aws")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
def store(s3: S3Server, bucket: str) -> S3ObjectStore:
    """A store made the standard way: from its URI, configured by the environment."""
    opened = open_objects(f"s3://{bucket}/team/artifacts")
    assert isinstance(opened, S3ObjectStore)
    return opened


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "model.bin"
    path.write_bytes(os.urandom(LARGE))
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(s3: S3Server, bucket: str) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- round trips ---------------------------------------------------------------------


def test_a_small_file_round_trips_under_its_content_address(store, s3, bucket, tmp_path):
    source = tmp_path / "metrics.json"
    source.write_bytes(b'{"acc": 0.91}\n')
    digest, size = store.put_file(source)
    assert (digest, size) == (sha(source.read_bytes()), source.stat().st_size)
    assert keys(s3, bucket) == [f"team/artifacts/sha256/{digest[:2]}/{digest[2:]}"]
    assert store.exists(digest) and not store.exists("0" * 64)

    dest = store.get(digest, tmp_path / "out" / "copy.json")
    assert dest.read_bytes() == source.read_bytes()
    assert leftovers(dest.parent) == []
    with store.open(digest) as f:
        assert f.read() == source.read_bytes()
    assert store.put_bytes(b"") == (sha(b""), 0)
    assert store.get(sha(b""), tmp_path / "empty").read_bytes() == b""


def test_a_large_file_is_uploaded_in_parts_and_round_trips_bit_identical(s3, bucket, large_file, tmp_path):
    client = s3.client()
    sent = count_requests(client)
    store = S3ObjectStore(bucket, "big", client=client)
    digest, size = store.put_file(large_file)
    assert size == LARGE > MULTIPART_THRESHOLD
    parts = -(-LARGE // PART_SIZE)
    assert sent["CreateMultipartUpload"] == 1 and sent["UploadPart"] == parts
    assert sent["CompleteMultipartUpload"] == 1 and sent["PutObject"] == 0
    head = client.head_object(Bucket=bucket, Key=store.key_for(digest))
    assert head["ETag"].strip('"').endswith(f"-{parts}") and head["ContentLength"] == LARGE

    sent.clear()
    dest = store.get(digest, tmp_path / "model.bin")
    assert dest.read_bytes() == large_file.read_bytes()
    assert sent["GetObject"] == parts  # downloaded in ranges too
    with store.open(digest) as f:
        assert sha(f.read()) == digest


def test_the_same_content_is_stored_once(s3, bucket, tmp_path, large_file):
    client = s3.client()
    store = S3ObjectStore(bucket, "dedup", client=client)
    (tmp_path / "a.txt").write_bytes(b"same bytes")
    (tmp_path / "b.txt").write_bytes(b"same bytes")
    first = store.put_file(tmp_path / "a.txt")
    sent = count_requests(client)
    assert store.put_file(tmp_path / "b.txt") == first
    assert store.put_bytes(b"same bytes") == first
    assert dict(sent) == {"HeadObject": 2}  # asked, and nothing uploaded
    store.put_file(large_file)
    sent.clear()
    store.put_file(large_file)
    assert dict(sent) == {"HeadObject": 1}
    assert len(keys(s3, bucket)) == 2


def test_bytes_over_the_threshold_go_in_parts(s3, bucket):
    client = s3.client()
    sent = count_requests(client)
    store = S3ObjectStore(bucket, client=client)
    data = os.urandom(MULTIPART_THRESHOLD + 1)
    digest, _ = store.put_bytes(data)
    assert sent["UploadPart"] == 2 and keys(s3, bucket) == [f"sha256/{digest[:2]}/{digest[2:]}"]
    with store.open(digest) as f:
        assert f.read() == data


# -- damage ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["changed", "truncated", "extended"])
def test_a_corrupted_object_fails_verification_and_leaves_no_file(store, s3, bucket, tmp_path, damage):
    data = b"weights " * 1000
    digest, _ = store.put_bytes(data)
    bad = {"changed": b"W" + data[1:], "truncated": data[:-1], "extended": data + b"!"}[damage]
    s3.client().put_object(Bucket=bucket, Key=store.key_for(digest), Body=bad)  # behind the store's back

    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(ObjectCorruptError, match=r"is damaged: its .* bytes hash to") as caught:
        store.get(digest, dest)
    assert isinstance(caught.value, ArtifactCorruptError) and caught.value.sha256 == digest
    assert caught.value.path == f"s3://{bucket}/{store.key_for(digest)}"
    assert not dest.exists() and leftovers(dest.parent) == []
    with pytest.raises(ObjectCorruptError), store.open(digest) as f:
        f.read()

    assert store.put_bytes(data) == (digest, len(data))  # storing it again replaces the damaged object
    assert store.get(digest, dest).read_bytes() == data


def test_a_missing_object_or_bucket_is_named(store, s3, tmp_path):
    with pytest.raises(ObjectMissingError, match="no stored object holds content 000000000000"):
        store.get("0" * 64, tmp_path / "x")
    with pytest.raises(ObjectMissingError):
        store.open("0" * 64)
    assert not (tmp_path / "x").exists()

    gone = open_objects("s3://no-such-bucket-here/p")
    for attempt in (lambda: gone.put_bytes(b"x"), lambda: gone.exists("0" * 64), gone.check):
        with pytest.raises(BucketNotFoundError, match=r"'no-such-bucket-here' does not exist") as caught:
            attempt()
        assert s3.endpoint in str(caught.value) and isinstance(caught.value, StoreError)
    with pytest.raises(BucketNotFoundError):
        open_objects("s3://no-such-bucket-here").get("0" * 64, tmp_path / "x")


def test_a_file_changed_after_it_was_hashed_is_not_stored(s3, bucket, tmp_path):
    client = s3.client()
    store = S3ObjectStore(bucket, client=client)
    source = tmp_path / "checkpoint.pt"
    source.write_bytes(b"a" * (MULTIPART_THRESHOLD + 1024))

    def rewrite(**_: Any) -> None:  # hashed, not there yet: a training loop writes the file again
        client.meta.events.unregister("after-call.s3.HeadObject", rewrite)
        with source.open("r+b") as f:
            f.seek(MULTIPART_THRESHOLD)
            f.write(b"b")

    client.meta.events.register("after-call.s3.HeadObject", rewrite)
    with pytest.raises(SourceChangedError, match="changed while it was being stored"):
        store.put_file(source)
    assert keys(s3, bucket) == []
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_only_regular_files_are_read(store, tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ArtifactSourceError, match="FIFO"):
        store.put_file(tmp_path / "pipe")


# -- what callers pass never becomes a key verbatim --------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["..", "../x", "a/../b", "a/..", "/abs", "a\\b", "a//b", "a/./b", "./a", "a b", "a%2F..", "ä", "x" * 901],
)
def test_a_bad_prefix_is_refused_before_anything_is_contacted(prefix):
    with pytest.raises(ObjectLocationError, match="not a usable artifact store location") as caught:
        S3ObjectStore("bucket", prefix, client=object())
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StoreError)
    with pytest.raises(ObjectLocationError):
        open_objects(f"s3://bucket/{prefix}", client=object())


@pytest.mark.parametrize(
    ("uri", "prefix"),
    [("s3://bucket", ""), ("s3://bucket/", ""), ("s3://bucket/a/b/", "a/b"), ("S3://bucket/team", "team")],
)
def test_a_prefix_is_normalised(uri, prefix):
    store = open_objects(uri, client=object())
    assert isinstance(store, S3ObjectStore) and store.prefix == prefix
    assert store.key_for("a" * 64) == "/".join([*([prefix] if prefix else []), "sha256", "aa", "a" * 62])


@pytest.mark.parametrize(
    "uri",
    [
        "s3://",
        "s3:///prefix",
        "s3://user@bucket/p",
        "s3://bucket:9000/p",
        "s3://bucket/p?versionId=1",
        "s3://bucket/p#x",
        "s3://../p",
        "gs://bucket/p",
        "file://otherhost/srv/artifacts",
        "",
        " ",
    ],
)
def test_a_bad_location_is_refused(uri):
    with pytest.raises(ObjectLocationError):
        open_objects(uri, client=object())


BAD_DIGESTS = ["", "abc", "A" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "a" * 63 + "/", "g" * 64]
BAD_DIGESTS += [None, b"a" * 64, " " + "a" * 63]


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
def test_a_bad_digest_is_refused_before_any_request(s3, bucket, tmp_path, digest):
    client = s3.client()
    sent = count_requests(client)
    for store in (S3ObjectStore(bucket, "p", client=client), FileObjectStore(tmp_path / "blobs")):
        for use in (store.exists, store.open, lambda d, s=store: s.get(d, tmp_path / "dest")):
            with pytest.raises(InvalidDigestError, match="not a SHA-256 hex digest"):
                use(digest)
    assert sent == {} and not (tmp_path / "dest").exists()


# -- an unreachable store ------------------------------------------------------------------


def test_an_unreachable_endpoint_raises_a_named_error_within_seconds(s3, tmp_path):
    """(``s3`` for the dummy credentials: requests are signed before they are sent)"""
    with closed_port() as port:
        endpoint = f"http://127.0.0.1:{port}"
        client = s3_client(endpoint, connect_timeout=1, read_timeout=1, max_attempts=2)
        store = S3ObjectStore("ledger", "team", client=client)
        for attempt in (
            lambda: store.put_bytes(b"x"),
            lambda: store.exists("0" * 64),
            lambda: store.get("0" * 64, tmp_path / "x"),
            store.check,
        ):
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnreachableError, match="cannot be reached") as caught:
                attempt()
            assert time.monotonic() - started < 5
            message = str(caught.value)
            assert endpoint in message and "s3://ledger/team" in message and "Traceback" not in message
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not (tmp_path / "x").exists() and leftovers(tmp_path) == []


def test_missing_credentials_are_named(s3, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ObjectStoreError, match=r"no usable credentials .* Set AWS_ACCESS_KEY_ID"):
        open_objects("s3://ledger/p").put_bytes(b"x")


def test_a_missing_boto3_or_a_bad_endpoint_setting_is_named(s3, monkeypatch):
    import boto3

    monkeypatch.setitem(sys.modules, "boto3", None)  # as if it were not installed
    with pytest.raises(ObjectStoreError, match=r"boto3 is not installed. Install the server extra"):
        open_objects("s3://ledger/p").exists("0" * 64)
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    with pytest.raises(ObjectStoreError, match=r"endpoint not a url\): no S3 client"):
        open_objects("s3://ledger/p").exists("0" * 64)


def test_the_client_follows_the_standard_environment(s3, monkeypatch):
    """AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS and AWS_RETRY_MODE as botocore reads them."""
    client = s3_client()
    assert client.meta.endpoint_url == s3.endpoint  # AWS_ENDPOINT_URL
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert s3_client(max_attempts=1).meta.config.retries["total_max_attempts"] == 1
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert s3_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 7}


# -- a folder ------------------------------------------------------------------------------


def test_a_file_store_round_trips_in_the_local_artifacts_layout(tmp_path):
    root = tmp_path / "artifacts"
    store = open_objects(root.as_uri())
    assert isinstance(store, FileObjectStore) and open_objects(str(root)).uri == store.uri
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(3 << 20))
    digest, size = store.put_file(source)
    assert (root / digest[:2] / digest[2:]).is_file() and size == 3 << 20
    assert store.put_bytes(source.read_bytes()) == (digest, size) and store.exists(digest)
    assert store.get(digest, tmp_path / "out" / "m.bin").read_bytes() == source.read_bytes()
    with store.open(digest) as f:
        assert f.read() == source.read_bytes()

    blob = root / digest[:2] / digest[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"not the model")
    with pytest.raises(ObjectCorruptError, match="13 bytes hash to"):
        store.get(digest, tmp_path / "damaged.bin")
    assert not (tmp_path / "damaged.bin").exists() and leftovers(tmp_path) == []
    with pytest.raises(ObjectMissingError):
        store.get("0" * 64, tmp_path / "missing.bin")


def test_importing_the_object_stores_loads_no_boto3():
    code = (
        "import sys, labledger.store.objects\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
