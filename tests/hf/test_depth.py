"""nerve depth (layer by layer) against independent computation: the closed-form gradient at the linear head,
finite differences through the real model, a plain transformers re-run with a plain hook, and the summary's
statistics against scipy and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from nerve.hf.depth import DepthSpec, depth_rows, gradient_scores, site_values
from nerve.hf.depth_table import summarise
from nerve.hf.run import load_hf_run
from nerve.run import read_split
from tests.conftest import run_cli
from tests.hf.conftest import plain_model


def _labelled_batch(pieces, labels):
    """All ``pieces`` in one batch, and the word labels (n_words,) laid out as its words: (batch, (B, L) labels)."""
    from nerve.hf.words import word_batch

    batch = word_batch(pieces, 0)
    lab = torch.zeros(batch.mask.shape, dtype=torch.long)
    start = 0
    for r, p in enumerate(pieces):
        lab[r, : len(p.first)] = torch.from_numpy(labels[start: start + len(p.first)])
        start += len(p.first)
    return batch, lab


def _rank(run, n=40):
    path, sents = read_split(run, "dev")
    pieces = run.pieces(sents[:n], path)
    return pieces, sents[:n]


def test_gradxact_at_the_classifier_input_equals_the_softmax_closed_form(tuned):
    run = load_hf_run(tuned)
    pieces, _ = _rank(run)
    H, labels = site_values(run.model, pieces, 0, ["classifier_in"], 16)
    h = H["classifier_in"].astype(np.float64)
    got = gradient_scores(run.model, pieces, 0, ["classifier_in"], {"classifier_in": h.mean(0)}, labels, 16)
    W = run.model.hidden2tag.weight.detach().double().numpy()
    b = run.model.hidden2tag.bias.detach().double().numpy()
    logits = h @ W.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    T = len(run.model.tags)
    expected = np.full((h.shape[1], T), np.nan)
    for t in np.unique(labels):
        rows = labels == t
        grad = W[t][None, :] - p[rows] @ W  # d log p_t / d h, per word
        expected[:, t] = (h[rows] * grad).sum(0) / rows.sum()
    np.testing.assert_allclose(got["classifier_in"]["gradxact"], expected, rtol=1e-4, atol=1e-6)


def test_atp_at_an_ffn_site_equals_finite_differences_through_the_model(tuned):
    run = load_hf_run(tuned)
    run.model.double()
    pieces, _ = _rank(run, 20)
    H, labels = site_values(run.model, pieces, 0, ["ffn1"], 32)
    m = H["ffn1"].astype(np.float64).mean(0)
    got = gradient_scores(run.model, pieces, 0, ["ffn1"], {"ffn1": m}, labels, 32)["ffn1"]["atp_mean"]
    batch, lab = _labelled_batch(pieces, labels)
    t = run.model.tags.index("B-PER")
    u, eps = int(np.argmax(np.abs(got[:, t]))), 1e-5
    assert abs(got[u, t]) > 1e-5  # a unit that matters (float64 differences resolve ~1e-10), so the test can fail

    def objective(e: float) -> float:
        def edit(v):
            v = v.clone()
            v[:, u] = v[:, u] + e * (float(m[u]) - v[:, u])
            return v

        with torch.no_grad(), run.model.edit_words("ffn1", edit):
            logp = torch.log_softmax(run.model.emissions(batch), -1)[..., t]
        return float(logp[batch.mask & (lab == t)].sum())

    finite = -(objective(eps) - objective(-eps)) / (2 * eps) / np.sum(labels == t)
    assert math.isclose(got[u, t], finite, rel_tol=1e-4, abs_tol=1e-8), (got[u, t], finite)


def test_a_depth_row_equals_a_plain_re_run_with_the_units_edited_by_a_plain_hook(tuned):
    """Layer 1's output: in this tiny model FFN edits of the words' first sub-tokens barely move a prediction."""
    run = load_hf_run(tuned)
    spec = DepthSpec(sites=("layer1",), methods=("probeless",), k=24, intervention="zero", rank_sentences=60,
                     score_sentences=40, random_draws=3)
    rank, score = read_split(run, "dev"), read_split(run, "test")
    rows = depth_rows(run, spec, rank, score).rows
    plain, tok = plain_model(tuned)
    hand = []
    seen = []
    handle = plain.bert.encoder.layer[0].register_forward_hook(
        lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        labels = []
        for s in [s for s in rank[1] if s.words][:60]:
            enc = tok(s.words, is_split_into_words=True, return_tensors="pt")
            first = [enc.word_ids(0).index(w) for w in range(len(s.words))]
            seen.clear()
            labels.append(plain(**enc).logits[0, first].argmax(-1).numpy())
            hand.append(seen[0][0, first].numpy())
    handle.remove()
    h, labels = np.concatenate(hand).astype(np.float64), np.concatenate(labels)
    present = np.unique(labels)
    means = {z: h[labels == z].mean(0) for z in present}
    row = max(rows, key=lambda r: r["own_drop"])
    assert row["own_drop"] > 0  # the edit changes predictions, so that the comparison can fail
    z = run.model.tags.index(row["tag"])
    probeless = sum(np.abs(means[z] - means[o]) for o in present if o != z)
    units = np.argsort(-probeless, kind="stable")[:24]

    def edit(module, inputs, out):
        hidden = (out[0] if isinstance(out, tuple) else out).clone()
        rows, cols = torch.as_tensor(first_now[0])[:, None], torch.as_tensor(units)[None, :]
        hidden[0, rows, cols] = 0.0
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden

    first_now: list = [None]
    handle = plain.bert.encoder.layer[0].register_forward_hook(edit)
    hits = total = 0
    with torch.no_grad():
        for s in [s for s in score[1] if s.words][:40]:
            enc = tok(s.words, is_split_into_words=True, return_tensors="pt")
            first_now[0] = [enc.word_ids(0).index(w) for w in range(len(s.words))]
            pred = plain(**enc).logits[0, first_now[0]].argmax(-1).numpy()
            gold = np.array([run.model.tags.index(t) for t in s.tags])
            hits += int(np.sum((gold == z) & (pred == z)))
            total += int(np.sum(gold == z))
    handle.remove()
    assert row["gold_tokens"] == total
    assert math.isclose(row["recall_after"], hits / total, abs_tol=1e-12)


def test_the_summary_equals_a_t_interval_and_holm_recomputed_by_hand():
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    runs = {}
    for name in ("a", "b", "c", "d"):
        runs[name] = [{"site": s, "depth": d, "method": "gradxact", "tag": t, "own_drop": rng.random(),
                       "random_drop": 0.1 * rng.random(), "selectivity": rng.random(), "p_random": rng.random(),
                       "draws": 20} for d, s in ((1, "ffn1"), (2, "layer1")) for t in ("B-PER", "I-PER")]
    out = summarise(runs)
    for r in out:
        x = np.array([np.mean([q["own_drop"] - q["random_drop"] for q in rows if q["site"] == r["site"]])
                      for rows in runs.values()])
        res = stats.ttest_1samp(x, 0.0)
        half = stats.t.ppf(0.975, 3) * x.std(ddof=1) / 2
        assert math.isclose(r["p"], res.pvalue, rel_tol=1e-9)
        assert math.isclose(r["ci_high"] - r["excess_mean"], half, rel_tol=1e-9)
        assert math.isclose(r["p_floor"], 1 / 21)
    holm = multipletests([r["p"] for r in out], method="holm")[1]
    np.testing.assert_allclose([r["p_holm"] for r in out], holm)


def test_nerve_depth_reuses_a_run_only_while_its_fingerprint_matches(tuned, tmp_path):
    args = ["depth", tuned, "--out", tmp_path / "d", "--sites", "ffn1,classifier_in", "--methods", "probeless",
            "--k", "3", "--rank-sentences", "30", "--score-sentences", "20", "--random-draws", "2"]
    assert run_cli(*args).returncode == 0
    marker = tmp_path / "d" / "runs" / tuned.name / "complete.json"
    first = marker.read_text()
    assert run_cli(*args).returncode == 0 and marker.read_text() == first
    assert run_cli(*args[:-1], "3").returncode == 0 and marker.read_text() != first
    assert (tmp_path / "d" / "depth.png").is_file() and (tmp_path / "d" / "depth_summary.csv").is_file()


def test_two_folders_holding_one_model_are_refused(tuned, tmp_path):
    import shutil

    shutil.copytree(tuned, tmp_path / "copy")
    proc = run_cli("depth", tuned, tmp_path / "copy", "--out", tmp_path / "d")
    assert proc.returncode == 2 and "same model" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_nerve_depth_on_a_tagger_run_is_a_one_line_error(tiny_run, tmp_path):
    proc = run_cli("depth", tiny_run, "--out", tmp_path / "d")
    assert proc.returncode == 2 and "not a fine-tuned Hugging Face run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_unknown_site_is_a_one_line_error_listing_the_sites(tuned, tmp_path):
    proc = run_cli("depth", tuned, "--out", tmp_path / "d", "--sites", "ffn9")
    assert proc.returncode == 2 and "ffn9" in proc.stderr and "classifier_in" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_depth_figure_tells_every_series_apart_and_carries_a_caption(monkeypatch, tmp_path):
    from matplotlib.colors import to_hex

    from nerve.report import depth_figure

    drawn = {}
    monkeypatch.setattr(depth_figure, "save_figure",
                        lambda fig, base, caption="": drawn.update(fig=fig, caption=caption))
    summary = [{"site": s, "depth": d, "method": m, "own_drop": 0.1, "excess_mean": 0.05, "ci_low": 0.0,
                "ci_high": 0.1, "random_drop": 0.05} for d, s in enumerate(("ffn1", "layer1", "ffn2", "layer2"), 1)
               for m in ("probeless", "selectivity", "gradxact", "atp_mean")]
    depth_figure.plot_depth(summary, tmp_path / "depth", 10, "mean", 3)
    assert "recall" in drawn["caption"] and "random" in drawn["caption"]
    for ax in drawn["fig"].axes:
        lines = [c.lines[0] for c in ax.containers] + [x for x in ax.get_lines() if not x.get_label().startswith("_")]
        keys = [(to_hex(line.get_color()), line.get_linestyle(), str(line.get_marker())) for line in lines]
        assert len(keys) == 5 and len(set(keys)) == 5


@pytest.mark.parametrize("site", ["ffn1", "layer1", "ffn2", "layer2", "classifier_in"])
def test_re_running_from_the_site_s_layer_equals_a_full_re_run(tuned, site):
    from nerve.hf.depth import LayerCache, edited_predictions
    from nerve.hf.run import predict_words

    run = load_hf_run(tuned)
    path, sents = read_split(run, "test")
    pieces = run.pieces(sents[:30], path)
    units = np.arange(0, run.model.site_units(site), 2)

    def zero(v):
        v = v.clone()
        v[..., torch.as_tensor(units)] = 0.0
        return v

    with run.model.edit_words(site, zero):
        full = np.concatenate(predict_words(run.model, pieces, 0, 7))
    assert not np.array_equal(full, np.concatenate(predict_words(run.model, pieces, 0, 7)))  # the edit matters
    np.testing.assert_array_equal(edited_predictions(LayerCache(run.model, pieces, 0, 7), site, units, None), full)


def test_the_summary_file_reads_back_as_numbers(tuned, tmp_path):
    import csv

    args = ["depth", tuned, "--out", tmp_path / "d", "--sites", "layer2", "--methods", "probeless", "--k", "3",
            "--rank-sentences", "30", "--score-sentences", "20", "--random-draws", "2"]
    assert run_cli(*args).returncode == 0
    for name in ("depth_summary.csv", f"runs/{tuned.name}/depth.csv"):
        for row in csv.DictReader((tmp_path / "d" / name).open()):
            for key, value in row.items():
                if key not in ("site", "method", "tag"):
                    float(value)


def test_sensitivity_at_the_last_layer_equals_xin_et_al_with_the_tag_layer_weights(tuned):
    """With words read at their first sub-token the last layer's output is the tag layer's input: the read-out is W
    and the sensitivity Xin et al.'s, computed from h, W and the labels alone."""
    from nerve.analysis.sensitivity import sensitivity

    run = load_hf_run(tuned)
    pieces, _ = _rank(run)
    H, labels = site_values(run.model, pieces, 0, ["layer2"], 16)
    got = gradient_scores(run.model, pieces, 0, ["layer2"], {"layer2": H["layer2"].mean(0)}, labels, 16)["layer2"]
    W = run.model.hidden2tag.weight.detach().double().numpy()
    np.testing.assert_allclose(got["readout"], W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["sensitivity"], sensitivity(H["layer2"], W, labels), rtol=1e-4, atol=1e-6)


def test_sensitivity_at_an_ffn_site_equals_finite_differences_through_the_model(tuned):
    """s[u, t] = mean over t's words of h_u·∂Z_t/∂h_u − the same over the others: the derivative of Z_t (t's logit
    summed over words) when u is scaled by (1 + e) at t's words only, and at the others only."""
    run = load_hf_run(tuned)
    run.model.double()
    pieces, _ = _rank(run, 20)
    H, labels = site_values(run.model, pieces, 0, ["ffn1"], 32)
    got = gradient_scores(run.model, pieces, 0, ["ffn1"], {"ffn1": H["ffn1"].mean(0)}, labels, 32)["ffn1"]
    batch, lab = _labelled_batch(pieces, labels)
    words = lab[batch.mask]
    t = run.model.tags.index("B-PER")
    u = int(np.nanargmax(np.abs(got["sensitivity"][:, t])))
    assert abs(got["sensitivity"][u, t]) > 1e-5  # a unit that matters, so that the test can fail

    def z_total(e: float, where: torch.Tensor) -> float:
        def edit(v):
            v = v.clone()
            v[where, u] = v[where, u] * (1 + e)
            return v

        with torch.no_grad(), run.model.edit_words("ffn1", edit):
            return float(run.model.emissions(batch)[..., t][batch.mask].sum())

    eps, own = 1e-5, words == t
    d_in = (z_total(eps, own) - z_total(-eps, own)) / (2 * eps) / int(own.sum())
    d_out = (z_total(eps, ~own) - z_total(-eps, ~own)) / (2 * eps) / int((~own).sum())
    assert math.isclose(got["sensitivity"][u, t], d_in - d_out, rel_tol=1e-4, abs_tol=1e-9)
    everywhere = torch.ones_like(own)

    def shift(e: float) -> float:
        def edit(v):
            v = v.clone()
            v[:, u] = v[:, u] + e
            return v

        with torch.no_grad(), run.model.edit_words("ffn1", edit):
            return float(run.model.emissions(batch)[..., t][batch.mask].sum())

    readout = (shift(eps) - shift(-eps)) / (2 * eps) / int(everywhere.sum())
    assert math.isclose(got["readout"][t, u], readout, rel_tol=1e-4, abs_tol=1e-9)


def _fake_result(rng, tags, sites, draws=5):
    from nerve.hf.depth import DepthResult

    T = len(tags)
    ev = {"tags": np.array(tags), "base": rng.uniform(0.6, 0.9, T), "support": rng.integers(50, 100, T)}
    rows = []
    for d, site in enumerate(sites, 1):
        ev[f"{site}/s"], ev[f"{site}/readout"] = rng.normal(size=(12, T)), rng.normal(size=(T, 12))
        ev[f"{site}/top"] = ev["base"][None, :] - rng.uniform(0.0, 0.3, (T, T))
        ev[f"{site}/random"] = ev["base"][None, :] - rng.uniform(0.0, 0.05, (draws, T))
        rows += [{"site": site, "depth": d}]
    return DepthResult(rows, ev)


def test_a_site_s_ablation_statistics_are_the_depth_rows_drops():
    """The findings read the depth analysis' own numbers: top-k drop − the random sets' mean drop, and top-k drop −
    the other tags' mean drop."""
    from nerve.analysis.findings_ablation import ablation_case
    from nerve.hf.depth_findings import ablation_rows

    tags = ["O", "B-PER", "I-PER", "B-LOC"]
    ev = _fake_result(np.random.default_rng(0), tags, ["ffn1"]).evidence
    rows = ablation_rows(ev, "ffn1", tags, 10)
    z = 1
    own = ev["base"][z] - ev["ffn1/top"][z, z]
    vs = ablation_case({"kind": "ablation_vs_random"}, rows, tags, "B-PER", 10)
    assert math.isclose(vs["statistic"], own - np.mean(ev["base"][z] - ev["ffn1/random"][:, z]), rel_tol=1e-12)
    sel = ablation_case({"kind": "ablation_selectivity"}, rows, tags, "B-PER", 10)
    others = [ev["base"][e] - ev["ffn1/top"][z, e] for e in range(4) if e != z]
    assert math.isclose(sel["statistic"], own - np.mean(others), rel_tol=1e-12)


def test_findings_at_every_site_are_judged_at_alpha_over_the_number_of_sites():
    from nerve.hf.depth_findings import findings_by_site, findings_rows

    tags = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    sites = ["ffn1", "layer1", "ffn2"]
    rng = np.random.default_rng(1)
    results = {f"r{i}": _fake_result(rng, tags, sites) for i in range(3)}
    spec = DepthSpec(k=10, intervention="mean")
    rows = findings_rows(findings_by_site(results, tags, sites, spec), {s: i for i, s in enumerate(sites, 1)})
    assert {r["site"] for r in rows} == set(sites)
    assert all(math.isclose(r["alpha"], 0.05 / 3) for r in rows)
    assert all(r["ablate"] in ("", "mean") for r in rows)  # zero ablation was not measured: left out
    assert {r["finding"] for r in rows} >= {1, 9, 10}


@pytest.fixture(scope="module")
def depth_out(tuned, tmp_path_factory):
    out = tmp_path_factory.mktemp("depth") / "d"
    args = ["depth", tuned, "--out", out, "--sites", "ffn1,layer2", "--methods", "sensitivity,probeless",
            "--k", "3", "--rank-sentences", "30", "--score-sentences", "20", "--random-draws", "3"]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return out


def test_nerve_depth_writes_the_findings_at_every_site(depth_out):
    import csv

    rows = list(csv.DictReader((depth_out / "depth_findings.csv").open()))
    assert {r["site"] for r in rows} == {"ffn1", "layer2"}
    assert {r["verdict"] for r in rows} <= {"holds", "holds for most", "contradicted", "negligible", "inconclusive",
                                            "cannot be tested", "not applicable"}
    assert (depth_out / "depth_findings.json").is_file()


def test_the_depth_report_shows_both_figures_and_both_tables(depth_out):
    page = (depth_out / "report.html").read_text()
    assert 'src="depth.png"' in page and 'src="depth_findings.png"' in page
    assert '<th class="">sensitivity</th>' in page and "corr_B_I_same_type" in page


def test_nerve_depth_ranks_with_every_method_by_default_so_that_the_findings_are_judged():
    from nerve.cli_args import build_parser
    from nerve.hf.depth import DEPTH_METHODS

    assert build_parser().parse_args(["depth", "R", "--out", "D"]).methods.split(",") == list(DEPTH_METHODS)
