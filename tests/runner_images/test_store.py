"""References, list/touch/rm, and size-bounded LRU eviction."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from isorun_runner.images import (
    ImageInUse,
    ImageNotFound,
    ImageStore,
    InvalidReference,
    local_name,
    parse,
)

from .imgutil import Tar


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("python:3.12-slim", "docker.io/library/python:3.12-slim"),
        ("python", "docker.io/library/python:latest"),
        ("user/app", "docker.io/user/app:latest"),
        ("index.docker.io/library/node:22", "docker.io/library/node:22"),
        ("ghcr.io/org/app:1.4", "ghcr.io/org/app:1.4"),
        ("localhost/x", "localhost/x:latest"),
        (
            "registry.local:5000/team/agent@sha256:" + "a" * 64,
            "registry.local:5000/team/agent@sha256:" + "a" * 64,
        ),
        ("host:5000/a:tag@sha256:" + "b" * 64, "host:5000/a@sha256:" + "b" * 64),
    ],
)
def test_normalize(ref: str, normalized: str) -> None:
    assert str(parse(ref)) == normalized


@pytest.mark.parametrize("ref", ["", "UPPER/x", "a b", "x@sha256:12", "x:bad/tag", "x:-y"])
def test_invalid_refs(ref: str) -> None:
    with pytest.raises(InvalidReference) as e:
        parse(ref)
    assert e.value.status == 400


def test_local_names() -> None:
    assert local_name("base") == "base:latest"
    assert local_name("python:3.12-slim") == "python:3.12-slim"
    with pytest.raises(InvalidReference):
        local_name("x@sha256:" + "a" * 64)


def _import(store: ImageStore, tmp: Path, name: str, payload: bytes) -> str:
    path = tmp / f"{name}.tar"
    path.write_bytes(Tar().file("payload", payload).bytes())
    return store.import_archive(path, name).digest


def test_list_touch_remove(tmp_path: Path, store: ImageStore) -> None:
    d1 = _import(store, tmp_path, "one", b"1")
    store.import_archive(tmp_path / "one.tar", "alias")  # same bytes, second name
    recs = {r.name: r for r in store.list()}
    assert set(recs) == {"one:latest", "alias:latest"}
    assert recs["one:latest"].digest == d1 and recs["one:latest"].last_used is None
    store.touch("one")
    assert store.list()[1].last_used is not None
    with pytest.raises(ImageInUse):
        store.remove(d1, in_use={"alias"})
    store.remove("one")  # a name goes; the image stays under "alias"
    assert store.resolve("alias") is not None and store.resolve("one") is None
    store.remove("alias")
    assert store.list() == [] and list((store.root / "layers").iterdir()) == []
    with pytest.raises(ImageNotFound) as e:
        store.remove("alias")
    assert "isorun image pull" in str(e.value) and "isorun image import" in str(e.value)


def test_evict_lru_respects_in_use(tmp_path: Path, store: ImageStore) -> None:
    for name in ("a", "b", "c"):
        _import(store, tmp_path, name, name.encode() * 100_000)
        time.sleep(0.01)
    store.touch("a")  # a is now the most recently used
    per_image = store.total_bytes() // 3
    store.max_bytes = per_image * 2
    assert store.evict(in_use={"b"}) == ["c:latest"]  # b is LRU but in use
    store.max_bytes = per_image
    assert store.evict(in_use={"b"}) == ["a:latest"]
    assert [r.name for r in store.list()] == ["b:latest"]
    assert store.total_bytes() <= per_image
    assert len(list((store.root / "layers").iterdir())) == 1
    store.max_bytes = None
    assert store.evict() == []
