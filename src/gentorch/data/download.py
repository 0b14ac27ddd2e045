"""Downloading dataset files from their public mirrors, md5-verified and atomic.

Each missing (or corrupt) file is fetched into a temporary file beside its destination, its size
and md5 are checked while it streams in, and only then is it renamed into place: an interrupted or
wrong download never leaves a file under the final name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

from gentorch.data.checksums import verify_file
from gentorch.data.errors import ChecksumError, DatasetError, DatasetNotFoundError
from gentorch.data.locations import data_root
from gentorch.data.registry import FILES, MIRRORS, REMOTE_NAMES, RemoteFile, info

__all__ = ["download"]

_CHUNK = 1 << 16


def download(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
    progress: bool = False,
) -> Path:
    """Fetch every missing or corrupt file of dataset ``name`` into ``<root>/<name>/``.

    Files already present with the right md5 are left alone (no network access at all when the
    dataset is complete). Mirrors are tried in order for each file.

    Args:
        name: a dataset of :data:`gentorch.data.DATASETS`. ``"digits"`` ships with
            scikit-learn: nothing is downloaded and its bundled folder is returned.
        root: the dataset root; ``None`` uses ``$GENTORCH_DATA``, else the cache folder
            (:func:`gentorch.data.cache_dir`).
        mirrors: base URLs (``http(s)://`` or ``file://``) to try instead of the built-in ones;
            the file name is appended to each.
        timeout: seconds to wait on a connection or a read.
        progress: show a tqdm progress bar per file.

    Returns:
        The folder holding the dataset's files.

    Raises:
        DatasetError: an unknown ``name``, every mirror failed for some file (lists each URL
            and its error), ``root`` is a file, or the folder cannot be written.
        ValueError: ``mirrors`` is empty or ``timeout`` is not positive.
        TypeError: ``mirrors`` is a single string instead of a sequence of them.

    Example:
        >>> from gentorch.data.download import download
        >>> download("digits").name  # bundled with scikit-learn: no download
        'data'

        Fetching MNIST needs the network, so this one is not run as a test:

        >>> folder = download("mnist", progress=True)  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz',
         'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']
    """
    meta = info(name)
    if name not in FILES:
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    folder = dataset_folder(name, root)
    files = [f for split in meta.splits for f in FILES[name][split]]
    fetch_missing(name, folder, files, mirrors=mirrors, timeout=timeout, progress=progress)
    return folder


def dataset_folder(name: str, root: str | os.PathLike[str] | None) -> Path:
    """``<root>/<name>``, refusing a ``root`` (or dataset folder) that is an existing file.

    Raises:
        DatasetError: ``root`` or ``<root>/<name>`` exists but is a file, not a folder.
    """
    base = data_root(root)
    source = "root" if root is not None else "the dataset root ($GENTORCH_DATA or the cache)"
    if base.exists() and not base.is_dir():
        raise DatasetError(
            f"{source}: expected the folder holding one sub-folder per dataset, got the file {base}"
        )
    folder = base / name
    if folder.exists() and not folder.is_dir():
        raise DatasetError(f"{source}: expected {folder} to be the {name} folder, it is a file")
    return folder


def fetch_missing(
    name: str,
    folder: Path,
    files: Iterable[RemoteFile],
    *,
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
    progress: bool = False,
) -> None:
    """Make each of ``files`` present and md5-verified in ``folder``, downloading as needed.

    The building block of :func:`download` and of ``load(..., download=True)`` (which fetches
    only the files of the split it loads). A file that is present and verified is not touched;
    a missing or corrupt one is fetched from the mirrors in order and atomically replaced.

    Args:
        name: the dataset name (selects the built-in mirrors and the messages).
        folder: ``<root>/<name>``; created if needed.
        files: the published files to ensure, e.g. ``FILES["mnist"]["test"]``.
        mirrors: base URLs instead of the built-in ones.
        timeout: seconds to wait on a connection or a read.
        progress: show a tqdm progress bar per file.

    Raises:
        DatasetError: a file could not be fetched from any mirror (each URL and its error are
            listed) or the folder cannot be created.
        ValueError: ``mirrors`` is empty or ``timeout`` is not positive.
        TypeError: ``mirrors`` is a single string instead of a sequence of them.

    Example:
        A ``file://`` mirror shows the mechanics offline (real use passes e.g.
        ``FILES["mnist"]["test"]`` and the built-in mirrors):

        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.data.download import fetch_missing
        >>> from gentorch.data.registry import RemoteFile
        >>> spec = RemoteFile("hello.txt", 5, "5d41402abc4b2a76b9719d911017c592")
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = Path(tmp, "hello.txt").write_bytes(b"hello")  # the "mirror"
        ...     fetch_missing("mine", Path(tmp, "mine"), [spec], mirrors=[Path(tmp).as_uri()])
        ...     print(Path(tmp, "mine", "hello.txt").read_bytes())
        b'hello'
    """
    if isinstance(mirrors, str | bytes):
        raise TypeError(
            f"mirrors: expected a sequence of base URLs such as [{mirrors!r}], got a single "
            f"{type(mirrors).__name__}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    bases = tuple(mirrors) if mirrors is not None else MIRRORS[name]
    if not bases:
        raise ValueError("mirrors: expected at least one base URL, got an empty sequence")
    for remote in files:
        path = folder / remote.filename
        try:
            verify_file(path, remote, name)
            continue
        except (DatasetNotFoundError, ChecksumError):
            pass
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatasetError(f"{name}: cannot create {folder} to download into ({err})") from err
        remote_name = REMOTE_NAMES.get(name, {}).get(remote.filename, remote.filename)
        failures = []
        for base in bases:
            url = base if base.endswith("/") else base + "/"
            url += remote_name
            try:
                _fetch(url, path, remote, timeout=timeout, progress=progress)
                break
            except (OSError, urllib.error.URLError, ChecksumError, ValueError) as err:
                failures.append(f"  {url}: {err}")
        else:
            raise DatasetError(
                f"{name}: could not download {remote.filename} (md5 {remote.md5}) from any "
                f"mirror:\n" + "\n".join(failures) + f"\nPut the file in {folder}/ by hand."
            )
        verify_file(path, remote, name)


def _fetch(url: str, dest: Path, remote: RemoteFile, *, timeout: float, progress: bool) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; rename it there once verified."""
    from tqdm.auto import tqdm

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=timeout) as response,
            tqdm(
                total=remote.size,
                unit="B",
                unit_scale=True,
                desc=remote.filename,
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                # Stop early on a response longer than the published file.
                if size > remote.size:
                    raise ChecksumError(f"response is longer than the expected {remote.size} bytes")
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        actual = digest.hexdigest()
        if size != remote.size or actual != remote.md5:
            raise ChecksumError(
                f"downloaded {size} bytes with md5 {actual}, expected {remote.size} bytes with "
                f"md5 {remote.md5}"
            )
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
