"""Artifact bytes are checked before they are handed out, and no stored path leaves its folder."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

import labledger as ll
from labledger.errors import ArtifactCorruptError
from labledger.store import integrity
from labledger.store.sqlite import DB_FILENAME


def _flip(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1])


def _remove(path: Path) -> None:
    path.unlink()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))  # several read blocks
    return path


@pytest.mark.timeout(30)
@pytest.mark.parametrize("damage", [_flip, _truncate, _remove], ids=["flipped-byte", "truncated", "missing"])
def test_a_damaged_file_blob_is_never_returned_as_intact(store_path, model, tmp_path, damage):
    with ll.start_run("art") as run:
        record = run.log_artifact(model, kind="model")
    art = ll.get_run(run.id).artifact("model.bin")
    with art.open() as f:
        assert f.read() == model.read_bytes()  # intact: read and checked
    blob = store_path / "artifacts" / record.sha256[:2] / record.sha256[2:]
    damage(blob)
    art = ll.get_run(run.id).artifact("model.bin")
    for action in (lambda: art.open(), lambda: art.path, lambda: art.download(tmp_path / "out" / "m.bin")):
        with pytest.raises(ArtifactCorruptError) as info:
            action()
        e = info.value
        assert (e.name, e.sha256, e.path) == ("model.bin", record.sha256, str(blob))
        assert "model.bin" in str(e) and "restore" in str(e)
    assert not (tmp_path / "out" / "m.bin").exists(), "a failed download leaves no partial file"


@pytest.mark.timeout(30)
def test_a_checked_blob_is_hashed_once_per_process_until_it_changes(store_path, model, monkeypatch):
    with ll.start_run("art") as run:
        record = run.log_artifact(model, kind="model")
    calls: list[Path] = []
    real = integrity.hash_file
    monkeypatch.setattr(integrity, "hash_file", lambda p: calls.append(p) or real(p))
    art = ll.get_run(run.id).artifact("model.bin")
    for _ in range(3):
        art.open().close()
        assert art.path.exists()
    blob = store_path / "artifacts" / record.sha256[:2] / record.sha256[2:]
    assert calls == [blob]
    _flip(blob)
    os.utime(blob, ns=(1, 1))
    with pytest.raises(ArtifactCorruptError):
        art.open()


def _tree(tmp_path: Path) -> Path:
    folder = tmp_path / "tree"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.txt").write_text("beta\n")
    return folder


@pytest.mark.timeout(30)
def test_a_directory_artifact_checks_its_manifest_and_every_file(store_path, tmp_path):
    with ll.start_run("art") as run:
        record = run.log_artifact(_tree(tmp_path), kind="dataset")
    art = ll.get_run(run.id).artifact("tree")
    assert (art.path / "sub" / "b.txt").read_text() == "beta\n"
    files = dict((rel, sha) for rel, sha, _ in art.files)
    b_blob = store_path / "artifacts" / files["sub/b.txt"][:2] / files["sub/b.txt"][2:]
    _flip(b_blob)
    fresh = ll.get_run(run.id).artifact("tree")
    with pytest.raises(ArtifactCorruptError, match="tree") as info:
        fresh.download(tmp_path / "copy")
    assert info.value.path == str(b_blob)
    # the store's cached copy is rebuilt from the blobs, so it fails too once it is gone
    os.chmod(art.path / "sub" / "b.txt", 0o644)
    (art.path / "sub" / "b.txt").write_text("changed in the cache\n")
    with pytest.raises(ArtifactCorruptError):
        _ = ll.get_run(run.id).artifact("tree").path
    manifest = store_path / "artifacts" / record.sha256[:2] / record.sha256[2:]
    _truncate(manifest)
    with pytest.raises(ArtifactCorruptError, match="manifest"):
        _ = ll.get_run(run.id).artifact("tree").files


def _forge_directory(store_path: Path, run_id: str, name: str, entries: list[tuple[str, str, int]]) -> str:
    """Point artifact ``name`` at a manifest listing ``entries`` (stored under its true hash)."""
    store = ll.open_store(store_path)
    sha, _ = store.blobs.put_bytes(json.dumps({"files": entries}).encode())
    conn = sqlite3.connect(store_path / DB_FILENAME)
    conn.execute("UPDATE artifacts SET sha256 = ? WHERE run_id = ? AND name = ?", (sha, run_id, name))
    conn.commit()
    conn.close()
    return sha


def _outside(tmp_path: Path) -> set[str]:
    return {str(p) for p in tmp_path.rglob("*") if "store" not in p.relative_to(tmp_path).parts[:1]}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "bad",
    [
        "../../../../escape.txt",
        "sub/../../../../../escape.txt",
        "/tmp/labledger-escape-{pid}.txt",
        "a/./b",
        "",
    ],
)
def test_a_tampered_manifest_never_writes_outside_the_folder(store_path, tmp_path, bad):
    bad = bad.format(pid=os.getpid())
    with ll.start_run("art") as run:
        run.log_artifact(_tree(tmp_path), kind="dataset")
    art0 = ll.get_run(run.id).artifact("tree")
    good = art0.files
    payload_sha = good[0][1]
    _forge_directory(store_path, run.id, "tree", [*good, (bad, payload_sha, 6)])
    before = _outside(tmp_path)
    art = ll.get_run(run.id).artifact("tree")
    dest = tmp_path / "downloads" / "here"
    for action in (lambda: art.path, lambda: art.files, lambda: art.download(dest)):
        with pytest.raises(ArtifactCorruptError) as info:
            action()
        assert info.value.name == "tree" and repr(bad) in str(info.value)
    assert _outside(tmp_path) - before <= {str(tmp_path / "downloads")}
    assert not (tmp_path / "escape.txt").exists()
    assert not Path(f"/tmp/labledger-escape-{os.getpid()}.txt").exists()


@pytest.mark.timeout(30)
def test_symlinks_in_the_cache_or_the_destination_are_never_followed(store_path, tmp_path):
    with ll.start_run("art") as run:
        record = run.log_artifact(_tree(tmp_path), kind="dataset")
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = store_path / "cache" / "dirs"
    cache.mkdir(parents=True)
    (cache / record.sha256).symlink_to(outside)  # the cached copy's name leads out of the store
    path = ll.get_run(run.id).artifact("tree").path
    assert path == cache / record.sha256 and not path.is_symlink()
    assert (path / "a.txt").read_text() == "alpha\n"
    assert list(outside.iterdir()) == []

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)  # a symlink on the way in the destination
    with pytest.raises(ArtifactCorruptError, match=r"sub/b\.txt"):
        ll.get_run(run.id).artifact("tree").download(dest)
    assert list(outside.iterdir()) == []


@pytest.mark.timeout(30)
def test_a_cache_folder_that_leads_outside_the_store_is_refused(store_path, tmp_path):
    with ll.start_run("art") as run:
        run.log_artifact(_tree(tmp_path), kind="dataset")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (store_path / "cache").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ArtifactCorruptError, match="outside the store"):
        _ = ll.get_run(run.id).artifact("tree").path
    assert list(outside.iterdir()) == []


def test_the_checks_use_the_logged_digest(model):
    assert integrity.hash_file(model) == (
        hashlib.sha256(model.read_bytes()).hexdigest(),
        model.stat().st_size,
    )
