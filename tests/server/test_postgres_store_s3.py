"""Artifacts of a PostgreSQL store in S3 (moto's server on loopback): uploaded once whichever run
logs the same bytes, downloaded into the local cache checked against their SHA-256."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import labledger as ll
from labledger.store import open_store
from labledger.store.objects import ObjectCorruptError
from labledger.store.objects.cached import CachedBlobs
from labledger.store.postgres.plugin import close_stores
from labledger.tracking import lifecycle

from .s3 import S3Server, count_requests, moto_s3

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with moto_s3(tmp_path_factory.mktemp("aws")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server, pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new bucket as the artifacts location (``LABLEDGER_ARTIFACTS``) of the test's database."""
    name = s3.new_bucket()
    for key, value in {
        "LABLEDGER_CACHE": str(tmp_path / "cache"),
        "LABLEDGER_ARTIFACTS": f"s3://{name}/team/artifacts",
        "LABLEDGER_STORE": pg_dsn,
    }.items():
        monkeypatch.setenv(key, value)
    yield name
    for run in lifecycle.open_runs():
        run.end("finished")
    close_stores()


def _keys(s3: S3Server, bucket: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _artifacts(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model.bin"
    model.write_bytes(b"m" * 200_000)
    folder = tmp_path / "tokenizer"
    (folder / "sub").mkdir(parents=True)
    (folder / "vocab.txt").write_text("a b c")
    (folder / "sub" / "merges.txt").write_text("ab")
    return model, folder


def test_the_same_bytes_are_uploaded_once_across_runs(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    model, folder = _artifacts(tmp_path)
    with ll.start_run("s3") as first:
        first.log_artifact(model)
        first.log_artifact(folder)
    keys = _keys(s3, bucket)
    assert len(keys) == 4  # the model, two files and the directory's manifest
    assert all(k.startswith("team/artifacts/sha256/") for k in keys)

    blobs = open_store(ll.get_run(first.id).store.uri).blobs
    assert isinstance(blobs, CachedBlobs)
    sent = count_requests(blobs.objects.client)  # type: ignore[union-attr]
    with ll.start_run("s3") as second:  # same process: known to be there, nothing is asked
        second.log_artifact(model, name="again.bin")
        second.log_artifact(folder, name="tokenizer-2")
    assert _keys(s3, bucket) == keys and sent["PutObject"] == 0

    close_stores()  # another process, in effect: it asks, and uploads nothing
    shutil.rmtree(tmp_path / "cache")
    with ll.start_run("s3") as third:
        third.log_artifact(model)
        third.log_artifact(folder)
    assert _keys(s3, bucket) == keys
    views = [ll.get_run(r.id) for r in (first, second, third)]
    assert len({a.sha256 for v in views for a in v.artifacts}) == 2


def test_artifacts_are_downloaded_into_the_cache(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    model, folder = _artifacts(tmp_path)
    with ll.start_run("s3") as run:
        run.log_artifact(model)
        run.log_artifact(folder)
    close_stores()
    shutil.rmtree(tmp_path / "cache")
    view = ll.get_run(run.id)
    assert view.artifact("model.bin").path.read_bytes() == model.read_bytes()
    tokenizer = view.artifact("tokenizer")
    assert (tokenizer.path / "vocab.txt").read_text() == "a b c"
    copy = tokenizer.download(tmp_path / "copy")
    assert (copy / "sub" / "merges.txt").read_text() == "ab"
    assert tokenizer.path.is_relative_to(tmp_path / "cache")


def test_a_changed_object_fails_the_read_and_stays_out_of_the_cache(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    model, _ = _artifacts(tmp_path)
    with ll.start_run("s3") as run:
        run.log_artifact(model)
    (key,) = _keys(s3, bucket)
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"m" * 199_999 + b"X")  # same size, other bytes
    close_stores()
    shutil.rmtree(tmp_path / "cache")
    art = ll.get_run(run.id).artifact("model.bin")
    with pytest.raises(ObjectCorruptError, match="hash to") as e:
        art.path  # noqa: B018
    assert e.value.sha256 == art.sha256 and key in e.value.path
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cached == []


def test_the_store_setting_names_the_artifacts_location(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABLEDGER_ARTIFACTS")
    other = s3.new_bucket("setting")
    open_store(ll.start_run("s3").store.uri).set_setting("server.artifacts", f"s3://{other}")
    ll.active_run().end()  # type: ignore[union-attr]
    close_stores()
    model, _ = _artifacts(tmp_path)
    with ll.start_run("s3") as run:
        run.log_artifact(model)
    assert _keys(s3, bucket) == [] and len(_keys(s3, other)) == 1
