"""`nerve study`: local and Ray engines agree, interrupted studies finish only the missing runs, the report
opens in headless Chromium with every image loaded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.helpers import small_conll

ARGS = ["--seeds", "2", "--set", "train.epochs=1", "--no-progress", "--judged-draws", "100", "--matched-draws", "10"]
# (the study's default draws, 1,000 and 100, cost the suite time and test nothing more than 100 and 10)
NO_METHODS = ["--methods", "none", "--no-figures"]  # where neither the ranking methods nor the figures are what a
# test is about: they cost most


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003"
    if not (shared / "train.txt").is_file():
        pytest.skip("../shared/data is not present")
    return small_conll(shared, tmp_path_factory.mktemp("slice"))


@pytest.fixture(scope="module")
def local_study(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "local"
    run_cli("study", "xin2019", "--data", corpus, "--out", out, "--engine", "local", *ARGS, check=True)
    return out


def _findings(study: Path) -> list:
    return json.loads((study / "compare" / "base" / "findings.json").read_text())


def test_local_study_writes_runs_findings_and_report(local_study):
    for seed in (42, 43):
        run = local_study / "runs" / "base" / f"seed{seed}"
        assert json.loads((run / "metrics.json").read_text())["complete"]
        assert (run / "analysis" / "analysis.json").is_file()
    assert _findings(local_study)
    assert (local_study / "report.html").stat().st_size > 10_000


def test_study_json_and_report_name_the_config_corpus_seeds_and_settings_of_every_run(local_study, corpus):
    setup = json.loads((local_study / "study.json").read_text())["setup"]
    assert setup["config"].endswith("xin2019.toml") and setup["data"] == str(corpus)
    assert (setup["seeds"], setup["settings"], setup["grid"]) == (2, ["train.epochs=1"], [])
    report = (local_study / "report.html").read_text()
    assert "settings of every run: <code>train.epochs=1</code>" in report and "2 seed(s) a variant" in report


def test_study_ranks_on_dev_and_judges_on_test_with_zero_and_mean_ablation(local_study):
    import csv

    from nerve.study import STUDY_METHODS

    rows = list(csv.DictReader((local_study / "runs" / "base" / "seed42" / "analysis" / "methods.csv").open()))
    assert {(r["rank_split"], r["score_split"]) for r in rows} == {("dev", "test")}
    assert {r["method"] for r in rows} == set(STUDY_METHODS) and {r["ablate"] for r in rows} == {"zero", "mean"}
    assert (local_study / "compare" / "base" / "methods_stability.csv").is_file()


def test_the_report_answers_which_ranking_method_from_the_paired_comparisons(local_study):
    summary = json.loads((local_study / "study.json").read_text())
    best = summary["variants"]["base"]["methods"]["best"]["necessity"]
    page = (local_study / "report.html").read_text()
    assert "Which ranking method? — base" in page and "ranks the units on <b>dev</b>" in page
    assert page.count("<b>Answer (necessity).</b>") == 1 and "Sufficiency: keep only" not in page
    for ablate in ("mean", "zero"):
        assert f"under {ablate}, {best[ablate]['best']} is best" in page.lower()
    assert "Method × intervention: mean area over k — base" in page and "consensus" in page


def test_study_draws_the_first_seeds_figures_and_tells_how_to_draw_the_others(local_study):
    first, second = (local_study / "runs" / "base" / f"seed{seed}" / "analysis" for seed in (42, 43))
    assert (first / "sensitivity_heatmap.png").is_file() and not list(first.glob("*.svg"))
    assert not list(second.glob("*.png")) and (second / "ablation.csv").is_file() and (second / "methods.csv").is_file()
    page = (local_study / "report.html").read_text()
    assert f"nerve plot analysis {second} --out {second.parent / 'figures'}" in page


def test_the_report_leaves_out_figures_an_earlier_run_left_behind(local_study, tmp_path):
    from nerve.report.html import write_report

    stale = [local_study / "runs" / "base" / "seed43" / "analysis" / "sensitivity_heatmap.png",
             local_study / "compare" / "base" / "corr_seed43.png"]
    summary = json.loads((local_study / "study.json").read_text())
    try:
        for p in stale:
            shutil.copy(local_study / "runs" / "base" / "seed42" / "analysis" / "per_tag_accuracy.png", p)
        page = write_report(tmp_path, summary, study_dir=local_study).read_text()
    finally:
        for p in stale:
            p.unlink()
    assert "seed43/analysis/sensitivity_heatmap.png" not in page and "corr_seed43.png" not in page
    assert "seed42/analysis/sensitivity_heatmap.png" in page and "compare/base/corr_mean.png" in page


def test_study_compare_draws_the_mean_matrices_and_writes_every_runs_as_csv(local_study):
    cmp = local_study / "compare" / "base"
    assert {p.name for p in cmp.glob("corr_*")} == {"corr_mean.png", "corr_mean.csv", "corr_std.csv",
                                                     "corr_seed42.csv", "corr_seed43.csv"}
    assert (cmp / "methods_stability.png").is_file() and not list(cmp.glob("*.svg"))


def test_an_analysis_without_figures_is_not_reused_where_figures_are_expected(local_study):
    from dataclasses import replace

    from nerve.study import Job, analysis_done

    jobs = [Job.from_dict(j) for j in json.loads((local_study / "plan.json").read_text())["jobs"]]
    assert [j.analysis.figures for j in jobs] == [("png",), ()] and all(analysis_done(j) for j in jobs)
    assert not analysis_done(replace(jobs[1], analysis=jobs[0].analysis))


def test_summarise_reads_each_analysis_once(local_study, monkeypatch, tmp_path):
    import nerve.analysis.compare as compare
    from nerve.analysis.verdicts import write_findings
    from nerve.study import Job, summarise

    loaded = []
    real = compare.load_run_analysis
    monkeypatch.setattr(compare, "load_run_analysis", lambda d: loaded.append(d) or real(d))
    jobs = [Job.from_dict(j) for j in json.loads((local_study / "plan.json").read_text())["jobs"]]
    summary = summarise(jobs, tmp_path)
    assert len(loaded) == len(jobs) == 2
    write_findings(tmp_path / "again.json", summary["variants"]["base"]["findings"])
    assert json.loads((tmp_path / "again.json").read_text()) == _findings(local_study)


def test_summarise_reads_no_analysis_the_study_preloaded(local_study, monkeypatch, tmp_path):
    import nerve.analysis.compare as compare
    from nerve.study import Job, preload, summarise

    jobs = [Job.from_dict(j) for j in json.loads((local_study / "plan.json").read_text())["jobs"]]
    early: dict = {}
    preload([j.to_dict() for j in jobs], early)
    monkeypatch.setattr(compare, "load_run_analysis", lambda d: pytest.fail(f"{d} read again"))
    summarise(jobs, tmp_path, early)
    assert _findings(tmp_path) == _findings(local_study)


def test_ray_engine_gives_the_same_findings_as_local(local_study, corpus, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray"
    run_cli("study", "xin2019", "--data", corpus, "--out", out, "--engine", "ray", *ARGS, *NO_METHODS, check=True,
            fresh=True)

    def per_case(study):  # the matrix findings (the ablation ones differ: local judged the methods held out)
        return [(c["key"], c["values"], c["p"]) for f in _findings(study) if f["ablate"] is None
                for cl in f["clauses"] for c in cl["cases"]]

    assert per_case(out) == per_case(local_study) and per_case(out)


def test_killed_study_reruns_only_the_missing_runs(corpus, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nerve.cli", "study", "xin2019", "--data", str(corpus), "--out",
           str(out), "--workers", "1", *ARGS, *NO_METHODS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / "runs" / "base" / "seed42"
    deadline = time.time() + 300
    while not (first / "analysis" / "analysis.json").is_file():
        assert time.time() < deadline and proc.poll() is None, "the first run never finished"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stamp = (first / "metrics.json").stat().st_mtime_ns
    second = out / "runs" / "base" / "seed43"
    assert not (second / "analysis" / "analysis.json").is_file()
    run_cli(*cmd[3:], check=True)
    assert (first / "metrics.json").stat().st_mtime_ns == stamp
    assert (second / "analysis" / "analysis.json").is_file() and (out / "report.html").is_file()


def test_report_opens_in_headless_chromium_without_errors(local_study, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", (local_study / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert 'data-images-failed="0"' in proc.stdout
    n_ok = int(proc.stdout.split('data-images-ok="')[1].split('"')[0])
    assert n_ok >= 10


def test_grid_study_trains_each_variant_and_reports_a_grid_table(tmp_path):
    out = tmp_path / "grid"
    run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
            "--grid", "model.hidden=8,12", "--cell-set", "model.hidden=12:train.lr=0.05", "--workers", "2",
            "--no-progress", *NO_METHODS, check=True)
    for variant, lr in (("hidden=8", 0.1), ("hidden=12", 0.05)):
        run = out / "runs" / variant / "seed1"
        assert json.loads((run / "metrics.json").read_text())["complete"]
        assert tomllib.loads((run / "config.toml").read_text())["train"]["lr"] == lr
    report = (out / "report.html").read_text()
    assert ">Grid</h2>" in report and "hidden=8" in report and "hidden=12" in report
    variants = json.loads((out / "study.json").read_text())["variants"]
    assert variants["hidden=12"]["recipe"] == ["train.lr=0.05"] and variants["hidden=8"]["recipe"] == []
    table = np.genfromtxt(out / "grid.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert list(table["variant"]) == ["hidden=8", "hidden=12"] and list(table["n_runs"]) == [1, 1]
    assert (out / "findings_by_variant.csv").read_text().startswith("variant,finding,id,ablate,verdict,")
    assert (out / "contrasts.csv").read_text().splitlines()[0].startswith("finding,")



def test_summarise_grid_prints_a_finished_grid_and_one_still_running(tmp_path):
    out = tmp_path / "grid"
    run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
            "--grid", "model.hidden=8,12", "--no-progress", *NO_METHODS, check=True)
    script = Path(__file__).resolve().parents[1] / "bench" / "summarise_grid.py"
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, check=True)
    assert "| finding | hidden=8 | hidden=12 |" in done.stdout and "not finished" not in done.stdout
    (out / "plan.json").touch()  # a re-run has begun since study.json was written
    os.utime(out / "study.json", (0, 0))
    running = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, check=True)
    assert "(the study has not finished: 2 of 2 runs are done" in running.stdout


def test_keep_going_finishes_the_other_runs_reports_them_and_exits_with_the_failure(tmp_path):
    out = tmp_path / "kg"
    proc = run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
                   "--grid", "model.hidden=8,12", "--cell-set", "model.hidden=12:train.lr=1e30", "--workers", "2",
                   "--no-progress", "--keep-going", *NO_METHODS)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("nerve: error: 1 of 2 runs failed")
    assert "hidden=12/seed1" in proc.stderr and "the training loss is nan" in proc.stderr
    summary = json.loads((out / "study.json").read_text())
    assert list(summary["variants"]) == ["hidden=8"] and [f["variant"] for f in summary["failed"]] == ["hidden=12"]
    assert json.loads((out / "runs" / "hidden=8" / "seed1" / "metrics.json").read_text())["complete"]
    report = (out / "report.html").read_text()
    assert ">Failed runs</h2>" in report and "the training loss is nan" in report


def test_keep_going_on_the_ray_engine_collects_a_failed_task_and_goes_on(monkeypatch):

    from nerve.errors import NerveError
    from nerve.study import Job
    from nerve.study.engine import Engine, _execute_ray

    class TaskError(Exception):
        def __init__(self, cause):
            self.cause = cause

    def run(spec):
        if spec["seed"] == 2:
            raise TaskError(NerveError("run v/seed2: the training loss is nan"))
        if spec["seed"] == 3:
            raise TaskError(RuntimeError("out of memory"))
        return spec["seed"]

    class Ref:  # an object reference: hashable, resolved by ray.get
        def __init__(self, fn, spec):
            self.fn, self.spec = fn, spec

    errors = types.SimpleNamespace(RayTaskError=TaskError, RayError=Exception)
    ray = types.SimpleNamespace(is_initialized=lambda: True, exceptions=errors,
                                remote=lambda **_: lambda fn: types.SimpleNamespace(remote=lambda spec: Ref(fn, spec)),
                                wait=lambda pending, **_: (pending[:1], pending[1:]),
                                get=lambda ref: ref.fn(ref.spec))
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setattr("nerve.study.engine.run_job", run)
    jobs = [Job("v", [], seed, "c.toml", None, f"/tmp/r{seed}").to_dict() for seed in (1, 2, 3, 4)]
    failed, ticks = [], []
    _execute_ray(jobs, Engine("ray"), ticks.append, failed)
    assert [(spec["seed"], msg) for spec, msg in failed] == [
        (2, "run v/seed2: the training loss is nan"), (3, "run v/seed3: internal error: RuntimeError: out of memory")]
    assert sum(ticks) == 4  # the progress bar counts every task that ended
    with pytest.raises(NerveError, match="seed2"):
        _execute_ray(jobs, Engine("ray"), ticks.append)


def test_keep_going_records_an_unanticipated_error_of_a_local_worker_in_one_line():
    from nerve.study.workers import run_local
    from tests.helpers import fail_on_seed_two

    failed, ticks = [], []
    run_local(fail_on_seed_two, [{"variant": "v", "seed": s} for s in (1, 2, 3)], 2, ticks.append, failed=failed)
    assert failed == [({"variant": "v", "seed": 2}, "run v/seed2: internal error: RuntimeError: DefaultCPUAllocator: "
                                                    "can't allocate memory")]
    assert sum(ticks) == 3


def test_without_keep_going_a_failed_run_stops_the_study_before_any_report(tmp_path):
    out = tmp_path / "stop"
    proc = run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
                   "--grid", "model.hidden=12", "--cell-set", "model.hidden=12:train.lr=1e30", "--no-progress",
                   *NO_METHODS)
    assert proc.returncode == 2 and "the training loss is nan" in proc.stderr
    assert not (out / "report.html").exists() and not (out / "study.json").exists()


def test_partial_grid_resumes_with_only_its_missing_runs(tmp_path):
    import shutil

    out = tmp_path / "grid"
    cmd = ["study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
           "--grid", "model.hidden=8,12", "--workers", "1", "--no-progress", *NO_METHODS]
    run_cli(*cmd, check=True)
    kept, lost = out / "runs" / "hidden=8" / "seed1", out / "runs" / "hidden=12" / "seed1"
    stamp = (kept / "model.pt").stat().st_mtime_ns
    shutil.rmtree(lost)  # an interrupted grid: one cell never ran
    run_cli(*cmd, check=True)
    assert (kept / "model.pt").stat().st_mtime_ns == stamp
    assert json.loads((lost / "metrics.json").read_text())["complete"]
    assert len(json.loads((out / "study.json").read_text())["variants"]) == 2


@pytest.mark.parametrize("option, says", [
    (["--grid", "model.hiden=8,12"], "--grid 'model.hiden=8,12': unknown key 'model.hiden' (did you mean 'hidden'?)"),
    (["--grid", "model.hidden=8,12", "--cell-set", "model.hidden=8:train.lrr=0.1"],
     "--cell-set 'model.hidden=8:train.lrr=0.1': unknown key 'train.lrr'"),
    (["--set", "model.hiden=8"], "unknown key 'model.hiden'"),
    (["--set", "model.bidirectional=true", "--grid", "model.hidden=8,9"],
     "grid cell hidden=9: model.hidden must be even for a bidirectional encoder, got 9"),
    (["--grid", "model.hidden=8,8"], "--grid 'model.hidden=8,8': a value is given twice"),
    (["--grid", "model.hidden=8", "--grid", "model.hidden=12"], "model.hidden is already a --grid key"),
    (["--grid", "model.hidden=8,12", "--cell-set", "model.hidden=8:model.hidden=12"],
     "model.hidden cannot be a cell's setting"),
    (["--grid", "model.hidden=8,12", "--cell-set", "model.hidden=8:train.seed=5"], "train.seed cannot be a cell's"),
])
def test_a_bad_grid_option_is_a_one_line_error_and_makes_no_study_folder(tmp_path, option, says):
    proc = run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", tmp_path / "g",
                   *option)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "g").exists()


def test_compare_with_no_figures_analyses_on_the_fly_and_writes_every_table_but_no_figure(tmp_path):
    runs = []
    for seed in (1, 2):
        run = tmp_path / f"run{seed}"
        run_cli("train", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", run, "--set",
                f"train.seed={seed}", "--set", "train.epochs=1", "--no-progress", check=True)
        runs.append(run)
    out = tmp_path / "cmp"
    proc = run_cli("compare", *runs, "--out", out, "--no-figures", check=True)
    assert (runs[0] / "analysis" / "sensitivity.csv").is_file()
    for name in ("corr_run1.csv", "similarity_run2.csv", "overlap_run1.csv", "corr_mean.csv", "corr_std.csv",
                 "consistency.csv", "unit_matching.csv", "findings.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "findings.json").read_text()) and "corr" in proc.stdout.lower()
    drawn = [p for d in (out, *(r / "analysis" for r in runs)) for ext in ("png", "svg", "pdf")
             for p in d.rglob(f"*.{ext}")]
    assert drawn == []


def test_study_max_k_bounds_every_analysis_sweep(tmp_path):
    out = tmp_path / "k"
    run_cli("study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
            "--max-k", "3", "--no-progress", *NO_METHODS, check=True)
    analysis = json.loads((out / "runs" / "base" / "seed1" / "analysis" / "analysis.json").read_text())
    assert analysis["max_k"] == 3


def test_a_study_rerun_with_more_epochs_says_it_extends_the_runs_in_its_report_and_study_json(tmp_path):
    out = tmp_path / "ext"
    args = ["study", "tests/fixtures/tiny.toml", "--data", "tests/fixtures/tiny", "--out", out, "--seeds", "1",
            "--no-progress", *NO_METHODS]
    first = run_cli(*args, "--set", "train.epochs=1", check=True)
    assert "nerve study:" not in first.stderr  # a new run is what a study does: recorded, not said
    again = run_cli(*args, "--set", "train.epochs=2", check=True)
    run = out / "runs" / "base" / "seed1"
    assert f"nerve study: 1 of 1 runs extended: {run} (from 1 to 2 epochs:" in again.stderr
    changes = json.loads((out / "study.json").read_text())["changes"]
    assert [(c["run_dir"], c["action"]) for c in changes] == [("runs/base/seed1", "extended")]
    assert "from 1 to 2 epochs" in changes[0]["detail"]
    report = (out / "report.html").read_text()
    assert "What this invocation did</h2>" in report and "<code>runs/base/seed1</code>" in report
    assert "<td class=\"l\">extended</td>" in report
    assert not [f for f in out.rglob("*") if f.suffix in (".png", ".svg", ".pdf")]  # --no-figures draws nothing
    same = run_cli(*args, "--set", "train.epochs=2", check=True)
    assert "nerve study:" not in same.stderr and json.loads((out / "study.json").read_text())["changes"] == []
    assert "this invocation trained and analysed nothing" in (out / "report.html").read_text()


def test_a_task_ray_ran_twice_is_reported_as_retried(monkeypatch, tmp_path, capsys):
    from nerve.study import Engine, StudySpec, execute, plan, study_analysis

    class Ref:
        def __init__(self, fn, spec):
            self.fn, self.spec = fn, spec

    def get(ref):  # Ray re-runs a task whose worker died: the task body starts twice
        ref.fn(ref.spec)
        return ref.fn(ref.spec)

    errors = types.SimpleNamespace(RayTaskError=Exception, RayError=Exception)
    ray = types.SimpleNamespace(is_initialized=lambda: True, exceptions=errors,
                                remote=lambda **_: lambda fn: types.SimpleNamespace(remote=lambda spec: Ref(fn, spec)),
                                wait=lambda pending, **_: (pending[:1], pending[1:]), get=get)
    monkeypatch.setitem(sys.modules, "ray", ray)
    spec = StudySpec("tests/fixtures/tiny.toml", "tests/fixtures/tiny", str(tmp_path / "s"), seeds=1,
                     settings=("train.epochs=1",), analysis=study_analysis(methods=()).replace(figures=()))
    outcome = execute(plan(spec), Engine(kind="ray", progress=False))
    assert [c.action for c in outcome.changes] == ["trained", "retried"]
    assert "started 2 times" in outcome.changes[1].detail
    assert "nerve study: 1 of 1 runs retried" in capsys.readouterr().err


@pytest.mark.parametrize("address,node_ip,want", [(None, None, "127.0.0.1"), (None, "10.0.0.5", "10.0.0.5"),
                                                  ("10.0.0.1:6379", None, None)])
def test_ray_is_started_with_the_node_address_asked_for(monkeypatch, address, node_ip, want):
    from nerve.study.engine import Engine, _execute_ray

    seen = {}
    ray = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kw: seen.update(kw),
                                shutdown=lambda: None, remote=lambda **_: lambda fn: None,
                                exceptions=types.SimpleNamespace(RayError=Exception))
    monkeypatch.setitem(sys.modules, "ray", ray)
    spec = types.SimpleNamespace()
    with pytest.raises(AttributeError):  # stops right after ray.init: no task is started
        _execute_ray([spec], Engine("ray", address=address, node_ip=node_ip), lambda n: None)
    assert seen["address"] == address and seen.get("_node_ip_address") == want

