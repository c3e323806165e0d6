"""The explorer's files: ``index.html`` (the page, its script and style inlined) and ``data/`` beside it
(``index.js``: which runs there are, and in a study the matching of their units; ``rN.js``: one run's data), loaded
by script tags so that the page opens from ``file://`` with no server and no network."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from nerve.errors import NerveError

EXPLORER_DIR = "explore"  # where a study's explorer lives, beside its report.html
INDEX = "index.html"


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


def explorer_files(source: str | os.PathLike, live: bool = False) -> dict[str, str]:
    """Every file of the explorer over ``source`` (a run folder with ``analysis/``, an analysis folder, or a study
    folder), relative path -> text.

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
    payloads, runs, variants = {}, [], {}
    for i, (variant, name, d) in enumerate(found):
        rid = f"r{i}"
        payloads[rid] = run_payload(d)
        runs.append({"id": rid, "name": name, "variant": variant, "file": f"data/{rid}.js",
                     "units": len(payloads[rid]["units"]), "split": payloads[rid]["split"]})
        variants.setdefault(variant, []).append(rid)
    manifest = {"source": str(src.resolve()), "study": None, "runs": runs}
    if is_study(src):
        manifest["study"] = matching(payloads, variants)
    files = {INDEX: page_html(live), "data/index.js": f"window.NERVE_MANIFEST = {_js(manifest)};\n"}
    for rid, p in payloads.items():
        files[f"data/{rid}.js"] = f"window.nerveRunLoaded({_js(rid)}, {_js(p)});\n"
    return files


def write_explorer(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the explorer over ``source`` into the folder ``out`` (locked while written); returns its index.html.

    Files of an earlier explorer in ``out`` that this one does not write (runs of a larger study) are removed.
    """
    from nerve.folder import writer_lock
    from nerve.io import atomic_write_text, make_dirs

    files = explorer_files(source)
    out = Path(out)
    make_dirs(out / "data")
    with writer_lock(out, "nerve explore"):
        for rel, text in files.items():
            atomic_write_text(out / rel, text)
        for old in (out / "data").glob("r*.js"):
            if f"data/{old.name}" not in files:
                old.unlink()
    return out / INDEX


def explorer_link(study_dir: str | os.PathLike, from_dir: str | os.PathLike | None = None) -> str | None:
    """The relative path (POSIX) from ``from_dir`` (default: the study folder, where report.html lives) to the
    study's explorer, ``EXPLORER_DIR/index.html``, or None when it has not been written."""
    target = Path(study_dir) / EXPLORER_DIR / INDEX
    if not target.is_file():
        return None
    return Path(os.path.relpath(target, Path(from_dir or study_dir))).as_posix()
