"""Result folders: one writer at a time (an OS lock), what produced them (a fingerprint), and a completion marker
written last, so that a result is reused only when it is complete and was made from the same inputs."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nerve.errors import NerveError
from nerve.io import atomic_write_json, make_dirs, os_error

LOCK = ".nerve.lock"
IDENTITY = "identity.json"  # written when a folder is claimed: the fingerprint and what went into it
COMPLETE = "complete.json"  # written last: the fingerprint and the SHA-256 of every output file

_held: dict[str, int] = {}  # folders this process holds the lock of -> nesting depth
_sha_cache: dict[tuple, str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (cached within the process per path, inode, size, mtime and ctime: a ctime
    cannot be set back, so a file rewritten in place with its old mtime is hashed again)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def fingerprint(components: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``components`` (sorted keys)."""
    text = json.dumps(components, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts, as ``key: old -> new`` strings."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s if len(s) <= 40 else s[:18] + "…" + s[-18:]


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike, command: str = "nerve") -> Iterator[Path]:
    """Hold the folder's exclusive lock for the block; a second writer gets a NerveError at once.

    The lock is an ``flock`` on ``folder/.nerve.lock``, removed again when the block ends: the OS releases
    the lock when the holder exits, even by ``kill -9``, so a stale lock file never blocks a re-run.
    Re-entrant within one process.
    """
    path = make_dirs(folder)
    key = str(path.resolve())
    if key in _held:
        _held[key] += 1
        try:
            yield path
        finally:
            _held[key] -= 1
        return
    fd = _acquire(path / LOCK, path)
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{command} (pid {os.getpid()})".encode(), 0)
    _held[key] = 1
    try:
        yield path
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(path / LOCK)  # before the release: a waiter that opened it sees it gone and retries
        os.close(fd)


def _acquire(lock: Path, folder: Path) -> int:
    """An open, flock-ed descriptor of ``lock`` that is still the file at that path."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise os_error(err, lock) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            other = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise os_error(err, lock) from None
            raise NerveError(f"{folder}: {other} is writing in this folder; wait for it to finish or use another "
                             "folder (one writer per folder)") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed the file between our open and our lock: take the new one


def read_marker(folder: str | os.PathLike, name: str) -> dict | None:
    """A marker file's content, or None when it is absent or unreadable (treated as never written)."""
    try:
        data = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if _well_formed(data) else None


def _well_formed(data) -> bool:
    """A marker as nerve writes it: a string fingerprint, components as nested objects, files as name -> hash."""
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
        return False
    components, files = data.get("components", {}), data.get("files", {})
    if not isinstance(components, dict) or not isinstance(files, dict):
        return False
    if components.get("kind") == "run":  # a run's config is read section by section
        config = components.get("config", {})
        if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
            return False
    return all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())


def write_identity(folder: Path, components: dict) -> str:
    fp = fingerprint(components)
    atomic_write_json(folder / IDENTITY, {"fingerprint": fp, "components": components})
    return fp


def clear_complete(folder: Path) -> None:
    """Remove the completion marker before a folder's results are rewritten."""
    try:
        (folder / COMPLETE).unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        raise os_error(err, folder / COMPLETE) from None


def remove_files(folder: Path, names: list[str]) -> None:
    """Remove the files ``names`` (plain names an earlier result of this folder recorded) that a rewrite no longer
    writes, so that a reader never takes one for part of the new result."""
    for name in names:
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            continue
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            raise os_error(err, folder / name) from None


def mark_complete(folder: Path, components: dict, files: list[str], **extra: Any) -> str:
    """Write the completion marker (last): fingerprint, components and the SHA-256 of each output file."""
    fp = fingerprint(components)
    hashes = {name: sha256_file(folder / name) for name in files}
    atomic_write_json(folder / COMPLETE, {"fingerprint": fp, "components": components, "files": hashes, **extra})
    return fp


def completed(folder: str | os.PathLike, fp: str | None = None) -> dict | None:
    """The completion marker if the folder is complete (and made with fingerprint ``fp``, when given)."""
    marker = read_marker(folder, COMPLETE)
    if marker is None or (fp is not None and marker["fingerprint"] != fp):
        return None
    return marker


def changed_files(folder: str | os.PathLike, marker: dict) -> list[str]:
    """The files a completion marker recorded that are missing or differ now."""
    folder = Path(folder)
    return [name for name, sha in marker.get("files", {}).items()
            if not (folder / name).is_file() or sha256_file(folder / name) != sha]


def verify_files(folder: str | os.PathLike, names: list[str], what: str, redo: str) -> dict:
    """Check that ``folder`` is complete and that ``names`` are the files its marker recorded.

    Raises:
        NerveError: no marker (unfinished or killed), or a file missing or changed since (e.g. copied in).
    """
    folder = Path(folder)
    marker = read_marker(folder, COMPLETE)
    if marker is None:
        raise NerveError(f"{folder}: {what} is incomplete (no {COMPLETE}: it was interrupted or is still "
                         f"running); {redo}")
    recorded = marker.get("files", {})
    for name in names:
        p = folder / name
        if name not in recorded or not p.is_file():
            raise NerveError(f"{p}: missing from the finished {what}; {redo}")
        if sha256_file(p) != recorded[name]:
            raise NerveError(f"{p}: differs from the file the {what} wrote (changed or copied in afterwards); {redo}")
    return marker


# ----------------------------------------------------------------------------- paths in a study folder
# study.json stores the paths inside the study folder relative to it, so that a copied or moved study reads its
# own runs; older studies hold absolute paths, mapped into the folder the study is in now.


def stored_paths(value, out: Path):
    """``value`` (JSON-ready: dicts, lists, strings, numbers) with every string that is an absolute path inside the
    study folder ``out`` written relative to it (e.g. "runs/base/seed1"); other strings (the config and corpus the
    study read, outside it) are kept as they are."""
    if isinstance(value, dict):
        return {k: stored_paths(v, out) for k, v in value.items()}
    if isinstance(value, list):
        return [stored_paths(v, out) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        if path.is_relative_to(out):
            return path.relative_to(out).as_posix() or "."
    return value


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def study_run_folder(study_dir: Path, path_in_json: str, variant: dict) -> Path:
    """A run folder of the study in ``study_dir`` from the path study.json stores: a relative one (schema 3) is
    relative to the study folder; an absolute one (older studies) outside it (a study copied or moved since it was
    written) is taken relative to the folder the study was written in (the parent of its ``compare/<variant>``
    folder), else as ``runs/<variant folder>/seed<N>`` (its last three parts), so that a copy never reads the
    original's runs.

    Raises:
        NerveError: a relative path leading out of the study folder, or an absolute path that is none of these."""
    study_dir = Path(study_dir)
    path = Path(path_in_json)
    if not path.is_absolute():
        if not _inside(study_dir / path, study_dir):
            raise NerveError(f"{study_dir / 'study.json'}: run folder {path} leads out of the study folder (an edited "
                             "study.json?); expected runs/<variant>/seed<N>")
        return study_dir / path
    if _inside(path, study_dir):
        return path
    compare_dir = variant.get("compare_dir")
    if isinstance(compare_dir, str) and Path(compare_dir).is_absolute():
        old_root = Path(compare_dir).parent.parent
        if path.is_relative_to(old_root):
            return study_dir / path.relative_to(old_root)
    if len(path.parts) >= 3 and path.parts[-3] == "runs":
        return study_dir.joinpath(*path.parts[-3:])
    raise NerveError(f"{study_dir / 'study.json'}: run folder {path} is outside the study folder and not one of "
                     "its runs/<variant>/seed<N> folders; re-run `nerve study` into this folder")
