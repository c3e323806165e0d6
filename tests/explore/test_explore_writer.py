"""`nerve explore`'s writer and reader: it removes and overwrites only the files it wrote itself, a copied or moved
study shows its own runs, and a progress bar goes to stderr."""

from __future__ import annotations

import json
import shutil

from nerve.explore import explorer_files, write_explorer
from nerve.explore.page import WRITTEN
from tests.conftest import run_cli


def _runs_read(files: dict[str, str]) -> list[str]:
    """The analysis folders the explorer's run files were made from."""
    return [json.loads(text.split(", ", 1)[1].rsplit(");", 1)[0])["analysis_dir"]
            for rel, text in sorted(files.items()) if rel.startswith("data/r")]


def test_explore_keeps_the_users_own_files_and_removes_only_its_own(tiny_study, tiny_analysis, tmp_path):
    out = tmp_path / "ex"
    (out / "data").mkdir(parents=True)
    mine = {"data/report.js": "var report = 1;\n", "data/run.js": "var run = 2;\n", "data/results.js": "x\n",
            "data/r7.js": "my own r7\n", "notes.txt": "keep\n"}
    for rel, text in mine.items():
        (out / rel).write_text(text)
    run_cli("explore", tiny_study, "--out", out, check=True)  # two runs: r0.js, r1.js
    assert (out / "data" / "r1.js").is_file()
    run_cli("explore", tiny_analysis, "--out", out, check=True)  # one run: its own r1.js goes
    assert not (out / "data" / "r1.js").exists() and (out / "data" / "r0.js").is_file()
    assert {rel: (out / rel).read_text() for rel in mine} == mine
    assert json.loads((out / WRITTEN).read_text())["files"] == ["data/index.js", "data/r0.js", "index.html"]


def test_explore_refuses_to_overwrite_a_file_it_did_not_write(tiny_analysis, tmp_path):
    out = tmp_path / "ex"
    out.mkdir()
    (out / "index.html").write_text("<p>my page</p>")
    proc = run_cli("explore", tiny_analysis, "--out", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"nerve: error: {out / 'index.html'}: not written by `nerve explore` (not in "
                                   f"{out / WRITTEN}), and the explorer would overwrite it; choose another --out or "
                                   "move the file away")
    assert (out / "index.html").read_text() == "<p>my page</p>"
    (out / "index.html").unlink()
    (out / "data").mkdir()
    (out / "data" / "r0.js").write_text("mine")
    assert run_cli("explore", tiny_analysis, "--out", out).returncode == 2
    assert (out / "data" / "r0.js").read_text() == "mine"


def test_an_explorer_written_before_explorers_recorded_their_files_is_overwritten(tiny_analysis, tmp_path):
    out = tmp_path / "ex"
    write_explorer(tiny_analysis, out)
    (out / WRITTEN).unlink()  # as an older nerve left it
    (out / "data" / "r0.js").write_text("window.nerveRunLoaded(\"r0\", {});\n")
    write_explorer(tiny_analysis, out)
    assert json.loads((out / WRITTEN).read_text())["files"] == ["data/index.js", "data/r0.js", "index.html"]
    assert len((out / "data" / "r0.js").read_text()) > 1000


def test_an_edited_record_cannot_make_explore_delete_other_files(tiny_analysis, tmp_path):
    out = tmp_path / "ex"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    (out / WRITTEN).write_text(json.dumps({"files": ["keep.txt", "../x", "data/r5.js"]}))
    write_explorer(tiny_analysis, out)
    assert (out / "keep.txt").read_text() == "keep"


def _study_copy(tiny_study, dst):
    """A study as `nerve study` writes it into ``dst``: its files, with study.json naming ``dst``'s run folders
    by absolute path (and its compare folders)."""
    shutil.copytree(tiny_study, dst, ignore=shutil.ignore_patterns("explore"))
    study = json.loads((dst / "study.json").read_text())
    for name, v in study["variants"].items():
        v["compare_dir"] = str(dst / "compare" / name)
        for r in v["runs"]:
            r["run_dir"] = str(dst / "runs" / name / f"seed{r['seed']}")
    (dst / "study.json").write_text(json.dumps(study))
    return dst


def test_a_copied_study_shows_its_own_runs_not_the_originals(tiny_study, tmp_path):
    original = _study_copy(tiny_study, tmp_path / "study")
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)  # cp -r study copy
    read = _runs_read(explorer_files(copy))
    assert read == [str((copy / "runs" / "base" / f"seed{s}" / "analysis").resolve()) for s in (1, 2)]
    moved = tmp_path / "moved"
    original.rename(moved)  # mv study moved: the folder study.json names is gone
    proc = run_cli("explore", moved, "--out", tmp_path / "ex", check=True)
    assert "no run of the study has an analysis" not in proc.stderr
    files = {f"data/{p.name}": p.read_text() for p in (tmp_path / "ex" / "data").glob("*")}
    assert _runs_read(files) == [str((moved / "runs" / "base" / f"seed{s}" / "analysis").resolve()) for s in (1, 2)]


def test_a_study_whose_runs_lie_elsewhere_is_a_one_line_error(tiny_study, tmp_path):
    study = _study_copy(tiny_study, tmp_path / "study")
    data = json.loads((study / "study.json").read_text())
    data["variants"]["base"]["runs"][0]["run_dir"] = "/somewhere/else/seed1"
    (study / "study.json").write_text(json.dumps(data))
    proc = run_cli("explore", study, "--out", tmp_path / "ex")
    assert proc.returncode == 2 and "run folder /somewhere/else/seed1 is outside the study folder" in proc.stderr


def test_explore_shows_progress_on_stderr(tiny_analysis, tmp_path, capsys):
    write_explorer(tiny_analysis, tmp_path / "ex", progress=True)
    err = capsys.readouterr().err
    assert "explore" in err and "single-unit ablation" in err and "1/1" in err
    write_explorer(tiny_analysis, tmp_path / "ex2", progress=False)
    assert capsys.readouterr().err == ""
