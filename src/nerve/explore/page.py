"""The explorer's files: ``index.html`` (the page, its script and style inlined) and ``data/`` beside it
(``index.js``: which runs there are, and in a study the matching of their units; ``rN.js``: one run's data), loaded
by script tags so that the page opens from ``file://`` with no server and no network. ``.nerve-explorer.json``
records the files the explorer wrote: a later explorer into the same folder removes only those, and never
overwrites a file it did not write (a file of an explorer written before this record existed is recognised by how
it begins)."""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import resources
from pathlib import Path

from nerve.errors import NerveError

EXPLORER_DIR = "explore"  # where a study's explorer lives, beside its report.html
INDEX = "index.html"
WRITTEN = ".nerve-explorer.json"  # the files the explorer wrote into its folder
OURS = re.compile(r"index\.html|data/index\.js|data/r\d+\.js")  # the only names it writes (or removes)


def _static(name: str) -> str:
    return resources.files("nerve.explore").joinpath("static", name).read_text(encoding="utf-8")


def _js(value) -> str:
    """JSON as a JavaScript expression that is safe inside a <script> element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page_html(live: bool = False) -> str:
    """The page itself; ``live`` turns on the panel that tags typed sentences through ``nerve serve``."""
    html = _static("explorer.html")
    return (html.replace("/*STYLE*/", _static("explorer.css"))
            .replace("/*SCRIPT*/", _static("explorer.js"))
            .replace("/*LIVE*/", f"window.NERVE_LIVE = {'true' if live else 'false'};"))


def is_study(path: str | os.PathLike) -> bool:
    return (Path(path) / "study.json").is_file()


def explorer_files(source: str | os.PathLike, live: bool = False, progress: bool | None = False) -> dict[str, str]:
    """Every file of the explorer over ``source`` (a run folder with ``analysis/``, an analysis folder, or a study
    folder), relative path -> text; ``progress``: tqdm bars on stderr (None: on a terminal).

    Raises:
        NerveError: no analysis, or an incomplete, modified or stale one (naming the folder).
    """
    from nerve.explore.data import run_payload
    from nerve.explore.study import matching, study_runs

    src = Path(source)
    if not src.exists():
        raise NerveError(f"{src}: no such run, analysis or study folder")
    if is_study(src):
        found = study_runs(src)
    else:
        d = src / "analysis" if (src / "analysis" / "sensitivity.csv").is_file() else src
        if not (d / "sensitivity.csv").is_file():
            raise NerveError(f"{src}: no analysis here (expected a study folder, an analysis folder or a run folder "
                             "with analysis/; run `nerve analyze RUN --out RUN/analysis` first)")
        found = [("", d.resolve().parent.name if d.name == "analysis" else d.name, d)]
    from tqdm import tqdm

    payloads, runs, variants = {}, [], {}
    bar = tqdm(total=len(found), desc="explore", unit="run", file=sys.stderr,
               disable=None if progress is None else not progress)
    for i, (variant, name, d) in enumerate(found):
        rid = f"r{i}"
        payloads[rid] = run_payload(d, progress=progress)
        bar.update()
        runs.append({"id": rid, "name": name, "variant": variant, "file": f"data/{rid}.js",
                     "units": len(payloads[rid]["units"]), "split": payloads[rid]["split"]})
        variants.setdefault(variant, []).append(rid)
    manifest = {"source": str(src.resolve()), "study": None, "runs": runs}
    bar.close()
    if is_study(src):
        manifest["study"] = matching(payloads, variants)
    files = {INDEX: page_html(live), "data/index.js": f"window.NERVE_MANIFEST = {_js(manifest)};\n"}
    for rid, p in payloads.items():
        files[f"data/{rid}.js"] = f"window.nerveRunLoaded({_js(rid)}, {_js(p)});\n"
    return files


def _written(out: Path) -> set[str]:
    """The files an earlier explorer recorded writing into ``out`` (only names it writes; empty without a record)."""
    try:
        files = json.loads((out / WRITTEN).read_text(encoding="utf-8"))["files"]
        return {f for f in files if isinstance(f, str) and OURS.fullmatch(f)}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _signed(path: Path, rel: str) -> bool:
    """Whether ``path`` is a regular file that begins as the explorer writes ``rel`` (one an explorer wrote before
    explorers recorded their files)."""
    start = "<!doctype html>" if rel == INDEX else "window.NERVE_MANIFEST = " if rel == "data/index.js" else \
        "window.nerveRunLoaded("
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    return head.lower().startswith(start.lower()) and (rel != INDEX or "window.NERVE_LIVE" in head)


def _foreign(out: Path, names, written: set[str]) -> Path | None:
    """The first of ``names`` in ``out`` that is there but was not written by the explorer (None: none)."""
    for rel in names:
        path = out / rel
        if rel not in written and (path.exists() or path.is_symlink()) and not _signed(path, rel):
            return path
    return None


def write_explorer(source: str | os.PathLike, out: str | os.PathLike, progress: bool | None = False) -> Path:
    """Write the explorer over ``source`` into the folder ``out`` (locked while written); returns its index.html.

    Files an earlier explorer wrote into ``out`` (``.nerve-explorer.json``) that this one does not write (runs of a
    larger study) are removed; no other file is removed or overwritten.

    Raises:
        NerveError: ``out`` holds a file of the explorer's names that the explorer did not write (naming it).
    """
    from nerve.folder import writer_lock
    from nerve.io import atomic_write_json, atomic_write_text, make_dirs

    out = Path(out)

    def refuse_foreign(names) -> None:
        path = _foreign(out, names, _written(out))
        if path is not None:
            raise NerveError(f"{path}: not written by `nerve explore` (not in {out / WRITTEN}), and the explorer "
                             "would overwrite it; choose another --out or move the file away")

    refuse_foreign([INDEX, "data/index.js"])  # at once, before the runs are read
    files = explorer_files(source, progress=progress)
    make_dirs(out / "data")
    with writer_lock(out, "nerve explore"):
        refuse_foreign(files)
        written = _written(out)
        atomic_write_json(out / WRITTEN, {"files": sorted(written | set(files))})  # before any file is written
        for rel, text in files.items():
            atomic_write_text(out / rel, text)
        for rel in sorted(written - set(files)):
            (out / rel).unlink(missing_ok=True)
        atomic_write_json(out / WRITTEN, {"files": sorted(files)})
    return out / INDEX


def explorer_link(study_dir: str | os.PathLike, from_dir: str | os.PathLike | None = None) -> str | None:
    """The relative path (POSIX) from ``from_dir`` (default: the study folder, where report.html lives) to the
    study's explorer, ``EXPLORER_DIR/index.html``, or None when it has not been written."""
    target = Path(study_dir) / EXPLORER_DIR / INDEX
    if not target.is_file():
        return None
    return Path(os.path.relpath(target, Path(from_dir or study_dir))).as_posix()
