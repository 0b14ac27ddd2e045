"""Atomic file writes, shared by every package that saves results (checkpoints, classifiers,
run records): readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path

from gentorch._checks import as_path, check_parent_folders

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see either the old file or the new one, whole.

    The bytes go to a temporary file in the same folder, which is flushed, fsync'ed and renamed
    over ``path`` with ``os.replace`` (atomic on POSIX and Windows); the folder is then fsync'ed
    so that the rename itself survives a power loss.

    Args:
        path: destination file; its parent folders are created.
        data: the complete new content.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        TypeError: ``path`` is not a path or ``data`` is not bytes-like.
        ValueError: ``path`` is an existing folder, or one of its parents is a file.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from gentorch.training import write_atomic
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = write_atomic(Path(tmp, "sub", "note.txt"), b"hello")
        ...     print(p.read_bytes(), sorted(f.name for f in p.parent.iterdir()))
        b'hello' ['note.txt']
    """
    path = as_path(path)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    if path.is_dir():
        raise ValueError(f"path: expected a file to write, got the existing folder {str(path)!r}")
    check_parent_folders(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    # Directories cannot be opened for fsync on Windows; the rename is still atomic there.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
