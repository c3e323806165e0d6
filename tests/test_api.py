"""The public API (docs/API.md): the worked example runs, the tidy tables equal the per-run files, interventions
equal the analysis' rows, and every public name is documented with shapes."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nerve
from nerve.analysis.ablation import read_ablation_csv
from nerve.analysis.heldout import read_method_scores, read_methods_csv
from nerve.data.conll import read_conll
from nerve.errors import NerveError
from tests.conftest import TINY, TINY_CFG, run_cli

ROOT = Path(__file__).resolve().parents[1]
SPEC = dict(split="test", rank_split="dev", methods=("sensitivity", "random"), interventions=("zero", "mean"),
            max_k=3, random_draws=2, figures=())


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    run = nerve.load_run(tiny_run)
    return run, run.analyze(nerve.AnalysisSpec(**SPEC), out=tmp_path_factory.mktemp("api") / "analysis")


def test_the_worked_example_of_docs_api_runs(tmp_path):
    text = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    section = text.split("## A worked example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 5
    code = "\n".join(blocks)
    code = code.replace('config, data = "xin2019", "../shared/data/conll2003"',
                        f'config, data = {str(TINY_CFG)!r}, {str(TINY)!r}', 1)
    code = code.replace('settings=["train.epochs=10"]', 'settings=["train.epochs=2"]')
    code = code.replace('result.plot("figures")', 'result.plot("figures", formats=("png",))')  # one format: time
    assert str(TINY) in code and 'formats=("png",)' in code
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "figures" / "sensitivity_heatmap.png").is_file()


def test_import_nerve_does_not_import_torch():
    code = "import sys, nerve; assert 'torch' not in sys.modules; nerve.AnalysisSpec; print(nerve.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == nerve.__version__, proc.stderr


def test_tag_gives_one_tag_per_word_for_one_sentence_and_for_several(analysed):
    run, _ = analysed
    one = run.tag(["Anna", "Lee", "a"])
    assert len(one) == 3 and all(t in run.tags for t in one)
    assert run.tag([["Anna", "Lee", "a"], ["a"]]) == [one, run.tag(["a"])]


def test_tag_refuses_an_empty_sentence_in_one_line(analysed):
    run, _ = analysed
    with pytest.raises(NerveError, match="sentence 0: expected a non-empty list of words"):
        run.tag([[]])


def test_activations_hold_the_tokens_and_equal_the_analysis_archive(analysed):
    run, result = analysed
    acts = run.activations("test")
    archive = result.activations()
    np.testing.assert_array_equal(acts.h, archive.h)
    np.testing.assert_array_equal(acts.pred, archive.pred)
    words = [w for sent in read_conll(run._run.cfg.data.test) for w in sent.words]
    assert acts.tokens == words
    frame = acts.to_pandas()
    assert list(frame.columns[:5]) == ["sentence", "position", "token", "gold", "pred"] and len(frame) == len(words)


@pytest.mark.parametrize("how", ["zero", "mean"])
def test_intervene_equals_the_analysis_rows_of_that_intervention(analysed, how):
    run, result = analysed
    saved = read_method_scores(result.folder / "methods_scores.npz")
    rows = read_methods_csv(result.folder / "methods.csv")
    test = result.activations()
    checked = 0
    for j, tag in enumerate(saved.tags):
        if not (test.gold == j).any() or np.isnan(saved.scores["sensitivity"][:, j]).all():
            continue  # absent from the scoring split, or from the ranking split (then not swept)
        checked += 1
        for k in (1, 3):
            units = saved.rankings["sensitivity"][j, :k].tolist()
            with run.intervene(units, how, reference="dev"):
                pred = run.activations("test").pred
            recall = float(np.mean(pred[test.gold == j] == j))
            row = rows[(rows["method"] == "sensitivity") & (rows["ablate"] == how) & (rows["target_tag"] == tag)
                       & (rows["eval_tag"] == tag) & (rows["k"] == k)]
            assert len(row) == 1 and row["accuracy"][0] == pytest.approx(recall, abs=1e-12), (tag, k)
    assert checked >= 4


def test_intervene_resample_sets_each_tokens_units_to_one_reference_token_reproducibly_by_seed(analysed):
    run, _ = analysed
    dev = run.activations("dev").h
    units = [1, 4]
    with run.intervene(units, "resample", reference="dev", seed=3):
        a = run.activations("test").h
    with run.intervene(units, "resample", reference="dev", seed=3):
        b = run.activations("test").h
    with run.intervene(units, "resample", reference="dev", seed=4):
        c = run.activations("test").h
    pool = {tuple(r) for r in dev[:, units].tolist()}
    assert all(tuple(r) in pool for r in a[:, units].tolist())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, units], c[:, units])
    np.testing.assert_array_equal(np.delete(a, units, axis=1), np.delete(run.activations("test").h, units, axis=1))


def test_intervene_removes_its_hook_on_exit(analysed):
    run, _ = analysed
    before = run.activations("test").pred
    with pytest.raises(RuntimeError), run.intervene([0, 1], "zero"):
        raise RuntimeError("inside")
    np.testing.assert_array_equal(run.activations("test").pred, before)


def test_intervene_refuses_an_unknown_unit_or_intervention(analysed):
    run, _ = analysed
    with pytest.raises(NerveError, match="unit 'nope'"), run.intervene(["nope"]):
        pass
    with pytest.raises(NerveError, match="--ablate half: unknown intervention"), run.intervene([0], "half"):
        pass


def test_analysis_to_pandas_equals_its_ablation_and_methods_files(analysed):
    _, result = analysed
    frame = result.to_pandas()
    assert list(frame.columns) == ["table", "method", "intervention", "rank_split", "score_split", "tag", "eval_tag",
                                   "k", "selection", "draw", "metric", "value"]
    base = read_ablation_csv(result.folder / "ablation.csv")
    methods = read_methods_csv(result.folder / "methods.csv")
    assert len(frame) == 4 * (len(base) + len(methods))
    got = frame[(frame.table == "methods") & (frame.metric == "f1")]
    np.testing.assert_array_equal(got["value"].to_numpy(), methods["f1"])
    assert list(got["intervention"].astype(str)) == methods["ablate"].tolist()
    got = frame[(frame.table == "ablation") & (frame.metric == "accuracy")]
    np.testing.assert_array_equal(got["value"].to_numpy(), base["accuracy"])
    assert set(got["rank_split"].astype(str)) == {"test"}


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("api_study") / "st"
    run_cli("study", TINY_CFG, "--data", TINY, "--out", out, "--seeds", "2", "--methods", "sensitivity,random",
            "--max-k", "2", "--no-progress", "--no-figures", check=True)
    return out


def test_load_study_to_pandas_equals_every_runs_files(small_study):
    frame = nerve.load_study(small_study).to_pandas()
    assert list(frame.columns[:2]) == ["variant", "seed"] and set(frame["seed"]) == {1, 2}
    for seed in (1, 2):
        d = small_study / "runs" / "base" / f"seed{seed}" / "analysis"
        mine = frame[(frame.seed == seed) & (frame.table == "methods")]
        methods = read_methods_csv(d / "methods.csv")
        for metric in ("accuracy", "precision", "recall", "f1"):
            np.testing.assert_array_equal(mine[mine.metric == metric]["value"].to_numpy(), methods[metric])
        base = frame[(frame.seed == seed) & (frame.table == "ablation") & (frame.metric == "recall")]
        np.testing.assert_array_equal(base["value"].to_numpy(), read_ablation_csv(d / "ablation.csv")["recall"])


def test_load_study_of_a_folder_without_study_json_is_a_one_line_error(tmp_path):
    with pytest.raises(NerveError, match="no study.json"):
        nerve.load_study(tmp_path)


def test_every_public_name_has_a_docstring_and_its_arrays_their_shapes():
    for name in nerve.__all__:
        if name.startswith("__") or name == "FORMAT_VERSION":
            continue
        obj = getattr(nerve, name)
        doc = inspect.getdoc(obj)
        assert doc and len(doc) > 40, name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if callable(member) and not attr.startswith("_"):
                    assert inspect.getdoc(member), f"{name}.{attr}"
    for cls in (nerve.Activations, nerve.Method, nerve.Basis, nerve.Intervention):
        assert re.search(r"\(n_tokens|\(n,|\(n_units|\(T", inspect.getdoc(cls) + "".join(
            inspect.getdoc(m) or "" for m in vars(cls).values() if callable(m))), cls


def test_a_study_table_is_a_pandas_frame_with_categorical_labels(small_study):
    frame = nerve.load_study(small_study).to_pandas()
    assert isinstance(frame, pd.DataFrame) and str(frame["method"].dtype) == "category"


def test_study_json_declares_its_schema_and_a_newer_one_is_refused(small_study, tmp_path):
    import json
    import shutil

    from nerve.study import STUDY_SCHEMA

    assert json.loads((small_study / "study.json").read_text())["schema"] == STUDY_SCHEMA
    copy = tmp_path / "copy"
    shutil.copytree(small_study, copy)
    summary = json.loads((copy / "study.json").read_text())
    (copy / "study.json").write_text(json.dumps({**summary, "schema": STUDY_SCHEMA + 1}))
    with pytest.raises(NerveError, match=f"schema {STUDY_SCHEMA + 1}; this nerve reads"):
        nerve.load_study(copy).to_pandas()


def test_tag_keeps_a_non_breaking_space_inside_a_word_as_decode_does(analysed):
    run, _ = analysed
    assert len(run.tag(["New\u00a0York", "a"])) == 2
    with pytest.raises(NerveError, match="without spaces, tabs or control characters"):
        run.tag(["New York"])


def test_study_json_stores_the_paths_inside_the_study_relative_to_it(small_study):
    import json

    text = (small_study / "study.json").read_text()
    summary = json.loads(text)
    assert str(small_study.resolve()) not in text
    assert [r["run_dir"] for r in summary["variants"]["base"]["runs"]] == ["runs/base/seed1", "runs/base/seed2"]
    assert summary["variants"]["base"]["compare_dir"] == "compare/base"


def test_a_moved_study_reads_its_own_runs(small_study, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(small_study, moved)
    want = nerve.load_study(small_study).to_pandas()
    shutil.move(str(small_study), str(small_study.parent / "gone"))  # the original cannot be the one read
    try:
        got = nerve.load_study(moved).to_pandas()
    finally:
        shutil.move(str(small_study.parent / "gone"), str(small_study))
    # DataFrame.equals: the same shape, column dtypes and values (NaN equal to NaN), in milliseconds where
    # pandas' assert_frame_equal takes 15 s over categorical columns of 200,000 rows
    assert list(got.columns) == list(want.columns) and got.dtypes.equals(want.dtypes) and got.equals(want)


def test_a_study_json_whose_run_folder_leads_out_of_the_study_is_refused(small_study, tmp_path):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_study, copy)
    summary = json.loads((copy / "study.json").read_text())
    summary["variants"]["base"]["runs"][0]["run_dir"] = "../../elsewhere/seed1"
    (copy / "study.json").write_text(json.dumps(summary))
    with pytest.raises(NerveError, match="leads out of the study folder"):
        nerve.load_study(copy).to_pandas()
