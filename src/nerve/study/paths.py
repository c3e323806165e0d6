"""Paths in study.json: written relative to the study folder, so that a copied or moved study reads its own runs
(``stored``), and read back from the folder the study is in now (``run_folder``), also for the absolute paths
that studies written before schema 3 hold."""

from __future__ import annotations

from pathlib import Path

from nerve.errors import NerveError


def stored(value, out: Path):
    """``value`` (JSON-ready: dicts, lists, strings, numbers) with every string that is an absolute path inside the
    study folder ``out`` written relative to it (e.g. "runs/base/seed1"); other strings (the config and corpus the
    study read, outside it) are kept as they are."""
    if isinstance(value, dict):
        return {k: stored(v, out) for k, v in value.items()}
    if isinstance(value, list):
        return [stored(v, out) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        path = Path(value)
        if path.is_relative_to(out):
            return path.relative_to(out).as_posix() or "."
    return value


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def run_folder(study_dir: Path, path_in_json: str, variant: dict) -> Path:
    """A run folder of the study in ``study_dir`` from the path study.json stores: a relative one (schema 3) is
    relative to the study folder; an absolute one (older studies) outside it (a study copied or moved since it was
    written) is taken relative to the folder the study was written in (the parent of its ``compare/<variant>``
    folder), else as ``runs/<variant folder>/seed<N>`` (its last three parts), so that a copy never reads the
    original's runs.

    Raises:
        NerveError: an absolute path that is none of these."""
    study_dir = Path(study_dir)
    path = Path(path_in_json)
    if not path.is_absolute():
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
