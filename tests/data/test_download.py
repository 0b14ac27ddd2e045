"""download(): mirrors in order, md5 verification, atomic writes, served from 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from gentorch.data import DatasetError, download, load, md5sum
from gentorch.data.download import fetch_missing
from gentorch.data.registry import FILES, MIRRORS

TIMEOUT = 10.0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[functools.partial[str]]:
    """``serve(folder)`` starts a local HTTP server of ``folder`` and returns its base URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield functools.partial(start)
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A local URL where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_from_second_mirror(
    shared_data: Path, tmp_path: Path, serve: functools.partial[str], dead_url: str
) -> None:
    url = serve(shared_data / "mnist")
    folder = download("mnist", tmp_path, mirrors=[dead_url, url], timeout=TIMEOUT)
    assert folder == tmp_path / "mnist"
    expected = [f for split in ("train", "test") for f in FILES["mnist"][split]]
    assert _leftovers(folder) == sorted(f.filename for f in expected)
    for f in expected:
        assert md5sum(folder / f.filename) == f.md5
    x, y = load("mnist", "test", root=tmp_path)
    assert x.shape == (10000, 784)
    assert y is not None
    # a complete folder needs no network: only dead mirrors, and it still succeeds
    assert download("mnist", tmp_path, mirrors=[dead_url], timeout=TIMEOUT) == folder


def test_corrupt_download_is_rejected_and_leaves_no_file(
    tmp_path: Path, serve: functools.partial[str], dead_url: str
) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    # right size, wrong bytes; and a longer-than-published file
    (fake / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\0" * 4542)
    (fake / "t10k-images-idx3-ubyte.gz").write_bytes(b"\0" * 2_000_000)
    url = serve(fake)
    root = tmp_path / "root"
    with pytest.raises(DatasetError) as err:
        download("mnist", root, mirrors=[url, dead_url], timeout=TIMEOUT)
    message = str(err.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert url + "train-images-idx3-ubyte.gz: HTTP Error 404" in message
    assert dead_url in message
    assert str(root / "mnist") in message
    assert _leftovers(root / "mnist") == []
    # the wrong-content file is rejected by its md5; the long one as soon as it is too long
    for name, why in [
        ("t10k-labels-idx1-ubyte.gz", "expected 4542 bytes with md5 ec29112d"),
        ("t10k-images-idx3-ubyte.gz", "longer than the expected 1648877 bytes"),
    ]:
        spec = next(f for f in FILES["mnist"]["test"] if f.filename == name)
        with pytest.raises(DatasetError, match=why):
            fetch_missing("mnist", root / "mnist", [spec], mirrors=[url], timeout=TIMEOUT)
        assert _leftovers(root / "mnist") == []


def test_corrupt_local_file_is_replaced(
    shared_data: Path,
    tmp_path: Path,
    serve: functools.partial[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = serve(shared_data / "mnist")
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    monkeypatch.setitem(MIRRORS, "mnist", (url,))
    x, y = load("mnist", "test", root=tmp_path, download=True)
    assert y is not None
    assert y.shape == (10000,)
    assert x.shape == (10000, 784)
    # only the requested split was fetched
    assert _leftovers(folder) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_file_urls_and_remote_names(shared_data: Path, tmp_path: Path) -> None:
    # the binarized-MNIST mirror publishes the .mat files as binarized_mnist_*.amat
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for split in ("train", "valid", "test"):
        (mirror / f"binarized_mnist_{split}.amat").symlink_to(
            shared_data / "binarized-mnist" / f"binarized_mnist_{split}.mat"
        )
    folder = download("binarized-mnist", tmp_path / "root", mirrors=[mirror.as_uri()])
    assert _leftovers(folder) == [
        "binarized_mnist_test.mat",
        "binarized_mnist_train.mat",
        "binarized_mnist_valid.mat",
    ]
    x, y = load("binarized-mnist", "valid", root=tmp_path / "root")
    assert y is None
    assert torch.equal(x, load("binarized-mnist", "valid")[0])


def test_digits_needs_no_download() -> None:
    folder = download("digits")
    assert (folder / "digits.csv.gz").is_file()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'emnist'"):
        download("emnist")
    with pytest.raises(ValueError, match="mirrors: expected at least one base URL"):
        download("mnist", "/nonexistent-root-for-test", mirrors=[])
