"""Atomic file writes that honour the umask, and OS faults (full disk, read-only, no permission) as one line."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nerve.errors import NerveError

_HINTS = {
    errno.ENOSPC: "the disk is full; free space and re-run the same command (it resumes)",
    errno.EDQUOT: "the disk quota is exceeded; free space and re-run the same command (it resumes)",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "operation not permitted; choose a folder you can write to",
    errno.EISDIR: "a folder is in the way; expected a file path",
    errno.ENOTDIR: "a file is in the way; expected a folder",
    errno.EEXIST: "a file is in the way; expected a folder",
    errno.ENAMETOOLONG: "the name is too long",
}
_UMASK_LOCK = threading.Lock()


def os_error(err: OSError, path: str | os.PathLike | None = None, action: str = "write") -> NerveError:
    """A one-line NerveError for an OS fault: the path, the cause and what to do."""
    where = path if path is not None else (err.filename or "?")
    cause = err.strerror or type(err).__name__
    hint = _HINTS.get(err.errno or -1)
    return NerveError(f"{where}: cannot {action} ({cause})" + (f"; {hint}" if hint else ""))


def current_umask() -> int:
    """The process umask (read without changing it for other threads for long)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with a one-line error when a file is in the way or the place is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NerveError(f"{path}: is a file; expected a folder (or a path that does not exist yet)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NerveError(f"{path}: a file is in the way; expected a folder") from None
    except OSError as err:
        raise os_error(err, path) from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode a plain ``open`` would give (0666 less the umask). OS faults become a NerveError
    naming ``path``; a failing block leaves neither the temporary file nor a changed ``path``.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # replace what the link points to, and keep the link
    if path.is_dir():
        raise NerveError(f"{path}: is a folder; expected a file path")
    if path.exists() and not path.is_file():
        raise NerveError(f"{path}: is not a regular file (a device, pipe or socket); expected a file path")
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
    except OSError as err:
        raise os_error(err, path) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise os_error(err, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a killed process leaves the old file or none, never a part)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")


def atomic_save(path: str | os.PathLike, save: Callable[[Any], None], suffix: str = "") -> None:
    """Call ``save(buffer)`` on an in-memory binary buffer and write its bytes to ``path`` atomically.

    Serialising to memory first means a full disk surfaces as an ordinary OSError of the final write, whatever
    library did the serialising (torch's own writer reports it as an opaque RuntimeError).
    """
    buf = io.BytesIO()
    save(buf)
    atomic_write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects (reading corpora: ~2x faster), then
    move them to the collector's permanent generation (``gc.freeze``; they are still freed by reference counts)."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # what was built is long-lived: later collections need not walk it again
        if was:
            gc.enable()
