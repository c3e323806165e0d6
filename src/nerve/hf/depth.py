"""Layer by layer: ranking methods at every site of a fine-tuned transformer, each judged by an intervention inside
the real model (the site's top-k units of a tag set to their ranking-split mean, or 0, through a hook on the real
module; the whole model re-run on held-out sentences) against random k-unit sets at the same site.

Every method applies at every site: ``probeless`` and ``selectivity`` (class means, as in ``nerve.analysis.methods``),
``gradxact`` (gradient × activation) and ``atp_mean`` (attribution patching: the first-order change of the tag's
log-probability when the unit takes its mean), and ``sensitivity``: Xin et al.'s sensitivity with the tag layer's
weight W[t, u] replaced by the gradient of tag t's logit summed over the sentence's words with respect to the unit at
the word (its local linear read-out; at the tag layer's input it is W itself, so there it is Xin et al.'s number
exactly). The gradient methods take one backward pass per tag and batch through the real model (two for
sensitivity's logits).

Per run: ``depth_rows`` gives one row per (site, method, tag): the target tag's recall before and after, the mean
drop of the other tags, the random sets' mean drop and the method's p against them; and per site the evidence Xin
et al.'s findings read (``DepthResult.evidence``: sensitivities, the read-out, the sensitivity ranking's and the random
sets' recalls of every tag)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nerve.errors import NerveError
from nerve.hf.words import read_words, word_batch, word_positions

DEPTH_METHODS = ("sensitivity", "probeless", "selectivity", "gradxact", "atp_mean")
GRADIENT_METHODS = ("sensitivity", "gradxact", "atp_mean")
DEPTH_FIELDS = ("site", "depth", "method", "tag", "k", "recall", "recall_after", "own_drop", "others_drop",
                "selectivity", "random_drop", "random_sd", "p_random", "draws", "gold_tokens")


@dataclass(frozen=True)
class DepthSpec:
    """One depth analysis. sites: () for every site of the model; methods: of ``DEPTH_METHODS``; k: units
    intervened per tag; intervention: ``mean`` (the ranking split's mean of each unit) or ``zero``;
    rank_sentences / score_sentences: the first N sentences of the ranking (dev) and scoring (test) splits, 0 for
    all; random_draws: random k-unit sets per site (seeded by ``seed``); batch_size: sentences per forward pass."""

    sites: tuple[str, ...] = ()
    methods: tuple[str, ...] = DEPTH_METHODS
    k: int = 10
    intervention: str = "mean"
    rank_sentences: int = 1000
    score_sentences: int = 500
    random_draws: int = 20
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        bad = [m for m in self.methods if m not in DEPTH_METHODS]
        if bad or not self.methods:
            raise NerveError(f"--methods {','.join(self.methods)}: expected some of {', '.join(DEPTH_METHODS)}")
        if self.intervention not in ("mean", "zero"):
            raise NerveError(f"--ablate {self.intervention}: expected mean or zero")
        if self.k < 1 or self.random_draws < 1 or self.rank_sentences < 0 or self.score_sentences < 0:
            raise NerveError("depth: expected k >= 1, random draws >= 1 and sentence counts >= 0")


def _batches(pieces, pad_id: int, size: int):
    order = np.argsort([len(p.ids) for p in pieces], kind="stable")
    for start in range(0, len(order), size):
        idx = order[start: start + size]
        yield idx, word_batch([pieces[i] for i in idx], pad_id)


def site_values(model, pieces, pad_id: int, sites: Sequence[str], size: int) -> tuple[dict, np.ndarray]:
    """Every site's word-level values in one pass ({site: float32 (n_words, n)}) and the predicted tags (n_words,),
    sentences in input order."""
    from nerve.model.hooks import hooks

    store: dict[str, torch.Tensor] = {}
    fwd = [(s, (lambda name: lambda m, i, out: store.__setitem__(name, out.detach()))(s)) for s in sites]
    rows = {s: [None] * len(pieces) for s in sites}
    preds = [None] * len(pieces)
    model.eval()
    with torch.no_grad(), hooks(model, fwd):
        for idx, batch in _batches(pieces, pad_id, size):
            pred = model.decode(batch).numpy()
            for s in sites:
                h = store[s] if s == "classifier_in" else read_words(store[s], batch, model.cfg.pooling)
                for row, i in enumerate(idx):
                    rows[s][i] = h[row, : len(pieces[i].first)].numpy()
            for row, i in enumerate(idx):
                preds[i] = pred[row, : len(pieces[i].first)]
    return {s: np.concatenate(r).astype(np.float32) for s, r in rows.items()}, np.concatenate(preds)


def _word_sums(x: torch.Tensor, batch, site: str, pooling: str) -> torch.Tensor:
    """(n_words, n) per real word, in the batch's row-major word order: x at the word (``classifier_in``: word-level
    already), at its first sub-token, or (``mean``) summed over its sub-tokens (the positions an edit writes)."""
    if site == "classifier_in":
        return x[batch.mask]
    if pooling == "first":
        return x[word_positions(batch, pooling)]  # first sub-tokens in position order: the words' order
    L = batch.first.shape[1]
    member = (batch.word_of.unsqueeze(1) == torch.arange(L).view(1, L, 1)).to(x.dtype)  # shape: (B, L, S)
    return (member @ x)[batch.mask]


def gradient_scores(model, pieces, pad_id: int, sites: Sequence[str], means: dict, labels: np.ndarray,
                    size: int) -> dict:
    """{site: {"gradxact": (n, T), "atp_mean": (n, T), "sensitivity": (n, T), "readout": (T, n)}}.

    For tag t, L_t is its log-probability summed over the words labelled t; gradxact[u, t] = Σ h_u·∂L_t/∂h_u and
    atp_mean[u, t] = Σ (h_u − mean_u)·∂L_t/∂h_u over the positions an intervention writes (first-order: the drop of
    L_t when u goes to 0, or to its mean), each divided by the words of t. With Z_t tag t's logit summed over every
    word and g = ∂Z_t/∂h_u at a word: readout[t, u] = the mean of g over words, and sensitivity[u, t] = the mean of
    h_u·g over the words labelled t minus its mean over the others (Xin et al.'s s with W[t, u] → g; at the tag
    layer's input g = W[t, u]). Labels: ``labels`` (n_words,), NaN columns for a tag no word carries."""
    from nerve.model.hooks import hooks

    T = len(model.tags)
    out = {s: {m: np.zeros((model.site_units(s), T)) for m in ("gradxact", "atp_mean")} for s in sites}
    contrib = {s: torch.zeros((T, T, model.site_units(s)), dtype=torch.float64) for s in sites}  # [label, tag, unit]
    readout = {s: torch.zeros((T, model.site_units(s)), dtype=torch.float64) for s in sites}
    store: dict[str, torch.Tensor] = {}
    fwd = [(s, (lambda name: lambda m, i, o: store.__setitem__(name, o))(s)) for s in sites]
    model.eval()
    start = 0
    label_rows = []
    for p in pieces:
        label_rows.append(labels[start: start + len(p.first)])
        start += len(p.first)
    pooling = model.cfg.pooling
    with torch.enable_grad(), hooks(model, fwd):
        for idx, batch in _batches(pieces, pad_id, size):
            store.clear()
            logits = model.emissions(batch)  # shape: (B, L, T)
            logp = torch.log_softmax(logits, dim=-1)
            lab = torch.zeros(batch.mask.shape, dtype=torch.long)
            for row, i in enumerate(idx):
                lab[row, : len(label_rows[i])] = torch.from_numpy(label_rows[i])
            words = lab[batch.mask]  # shape: (n_words,)
            tensors = [store[s] for s in sites]
            values = [_word_sums(h.detach(), batch, s, pooling).double() for s, h in zip(sites, tensors)] \
                if pooling == "first" else None  # a word's value is its first sub-token's: h·g factorises
            positions = word_positions(batch, pooling)
            for t in range(T):
                grads = torch.autograd.grad(logits[..., t][batch.mask].sum(), tensors, retain_graph=True)
                for j, (s, h, g) in enumerate(zip(sites, tensors, grads)):
                    gw = _word_sums(g, batch, s, pooling).double()  # shape: (n_words, n)
                    hg = _word_sums(h.detach() * g, batch, s, pooling).double() if values is None else values[j] * gw
                    readout[s][t] += gw.sum(0)
                    contrib[s][:, t].index_add_(0, words, hg)
                chosen = batch.mask & (lab == t)
                if not bool(chosen.any()):
                    continue
                grads = torch.autograd.grad(logp[..., t][chosen].sum(), tensors, retain_graph=True)
                for s, h, g in zip(sites, tensors, grads):
                    hv, gv = (h, g) if s == "classifier_in" else (h[positions], g[positions])
                    hv, gv = hv.detach().reshape(-1, hv.shape[-1]), gv.reshape(-1, gv.shape[-1])
                    if s == "classifier_in":
                        keep = batch.mask.reshape(-1)
                        hv, gv = hv[keep], gv[keep]
                    out[s]["gradxact"][:, t] += (hv * gv).sum(0).double().numpy()
                    out[s]["atp_mean"][:, t] += ((hv - torch.as_tensor(means[s])) * gv).sum(0).double().numpy()
    counts = np.bincount(labels, minlength=T).astype(np.float64)
    n = float(len(labels))
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in sites:
            for m in ("gradxact", "atp_mean"):
                out[s][m] = np.where(counts > 0, out[s][m] / counts, np.nan)
            c = contrib[s].numpy()  # shape: (T labels, T tags, n)
            own = np.stack([c[t, t] for t in range(T)])  # shape: (T, n)
            mean_in = own / counts[:, None]
            mean_out = (c.sum(0) - own) / (n - counts)[:, None]
            sens = mean_in - mean_out
            sens[(counts == 0) | (counts == n)] = np.nan
            out[s]["sensitivity"] = sens.T
            out[s]["readout"] = readout[s].numpy() / n
    return out


class LayerCache:
    """The scored sentences' batches with the inputs of every encoder layer, recorded in one unedited pass (forward
    pre-hooks with their keyword arguments: the attention mask as the model built it), so that an edit at layer N
    re-runs layers N.. and the head only: the same operations as a full re-run from the embeddings."""

    def __init__(self, model, pieces, pad_id: int, size: int):
        from nerve.hf.model import _layers

        self.model, self.layers, self.pieces = model, _layers(model.encoder), pieces
        self.batches = []
        model.eval()
        for idx, batch in _batches(pieces, pad_id, size):
            inputs: list = []
            handles = [layer.register_forward_pre_hook(
                lambda m, args, kwargs, store=inputs: store.append((args, kwargs)), with_kwargs=True)
                for layer in self.layers]
            last: list = []
            handles.append(self.layers[-1].register_forward_hook(
                lambda m, i, out, store=last: store.append(out[0] if isinstance(out, tuple) else out)))
            try:
                with torch.no_grad():
                    model.emissions(batch)
            finally:
                for h in handles:
                    h.remove()
            self.batches.append((idx, batch, inputs, last[0]))

    def predictions(self, site: str, edit) -> np.ndarray:
        """Predicted tags (n_words,), input order, with ``edit`` applied at ``site`` (``HFTagger.edit_words``)."""
        first = len(self.layers) if site == "classifier_in" else int(site.removeprefix("layer").removeprefix("ffn")) - 1
        out = [None] * len(self.pieces)
        model = self.model
        with torch.no_grad(), model.edit_words(site, edit):
            for idx, batch, inputs, last in self.batches:
                model._positions = word_positions(batch, model.cfg.pooling)
                try:
                    h = inputs[first][0][0] if first < len(self.layers) else last
                    for layer, (args, kwargs) in zip(self.layers[first:], inputs[first:]):
                        h = layer(h, *args[1:], **kwargs)
                        h = h[0] if isinstance(h, tuple) else h
                finally:
                    model._positions = None
                pred = model.best(model.head(h, batch), batch.mask).numpy()
                for row, i in enumerate(idx):
                    out[i] = pred[row, : len(self.pieces[i].first)]
        return np.concatenate(out)


def edited_predictions(cache: LayerCache, site: str, units: np.ndarray, values) -> np.ndarray:
    """The model's predicted tags (n_words,) with ``units`` of ``site`` set to ``values`` (None: 0; else float (n,)
    one per unit) at every word, through a hook on the real module; the model re-run from the site's layer on."""
    idx_units = torch.as_tensor(np.asarray(units, dtype=np.int64))
    fill = None if values is None else torch.as_tensor(np.asarray(values, dtype=np.float32))[idx_units]

    def edit(v):
        v = v.clone()
        v[..., idx_units] = 0.0 if fill is None else fill.to(v.dtype)
        return v

    return cache.predictions(site, edit)


def tag_recalls(gold: np.ndarray, pred: np.ndarray, T: int) -> np.ndarray:
    """Per tag, the share of its gold words predicted as it (NaN for a tag without gold words): float (T,)."""
    hit = np.bincount(gold[gold == pred], minlength=T).astype(np.float64)
    n = np.bincount(gold, minlength=T).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hit / n, np.nan)


def default_sites(model) -> list[str]:
    """Every site, except ``classifier_in`` when words are read at their first sub-token: it is then the last
    layer's output read at the same positions (the same values, the same interventions)."""
    sites = model.sites()
    return [s for s in sites if s != "classifier_in"] if model.cfg.pooling == "first" else sites


def _class_scores(method: str, h: np.ndarray, labels: np.ndarray, T: int) -> np.ndarray:
    from nerve.analysis.methods import RankInput, probeless_scores, selectivity_scores

    x = RankInput(h, labels, np.zeros((T, h.shape[1])), T)  # neither method reads the tag layer
    return probeless_scores(x) if method == "probeless" else selectivity_scores(x)


@dataclass(frozen=True)
class DepthResult:
    """One run's depth analysis. rows: one per (site, method, tag), ``DEPTH_FIELDS``; evidence: what Xin et al.'s
    findings read, as flat arrays (an npz's keys): ``tags`` (T,) the model's tags, ``base`` (T,) each tag's recall
    on the scored split unedited, ``support`` (T,) its gold words there, and per site (with the ``sensitivity``
    method) ``SITE/s`` (n, T) the sensitivities and ``SITE/readout`` (T, n) the read-out on the ranking split
    (``gradient_scores``), ``SITE/top`` (T, T) every tag's recall with target tag z's top-k sensitivity units
    intervened (row z; NaN rows for tags not judged) and ``SITE/random`` (draws, T) every tag's recall under each
    random k-unit set."""

    rows: list[dict]
    evidence: dict


def depth_rows(run, spec: DepthSpec, rank: tuple[str, list], score: tuple[str, list], progress=None) -> DepthResult:
    """The ``DepthResult`` of a loaded Hugging Face run (``LoadedHFRun``): methods ranked on ``rank`` = (path,
    sentences) with the model's predicted tags, judged on ``score`` by the site's top-k units set to their ``rank``
    mean (or 0) against ``spec.random_draws`` random k-unit sets. ``progress(text)`` is called as each site starts
    (its name and the seconds so far)."""
    t0 = time.perf_counter()
    model, pad, bs = run.model, run.tokenizer.pad_token_id, spec.batch_size
    sites = list(spec.sites) or default_sites(model)
    unknown = [s for s in sites if s not in model.sites()]
    if unknown:
        raise NerveError(f"--sites {','.join(unknown)}: expected some of {', '.join(model.sites())}")
    sites = [s for s in model.sites() if s in sites]  # input to output, each once
    if spec.k > min(model.site_units(s) for s in sites):
        raise NerveError(f"--k {spec.k}: more than the units of a site")
    cut = (lambda sents, n: [s for s in sents if len(s.words)][: n or None])
    rank_sents, score_sents = cut(rank[1], spec.rank_sentences), cut(score[1], spec.score_sentences)
    rank_p, score_p = run.pieces(rank_sents, rank[0]), run.pieces(score_sents, score[0])
    T = len(model.tags)
    H, labels = site_values(model, rank_p, pad, sites, bs)
    means = {s: H[s].astype(np.float64).mean(axis=0) for s in sites}
    grads = {}
    if set(GRADIENT_METHODS) & set(spec.methods):
        grads = gradient_scores(model, rank_p, pad, sites, means, labels, bs)
    tag_id = {t: i for i, t in enumerate(model.tags)}
    gold = np.array([tag_id[t] for s in score_sents for t in s.tags], dtype=np.int64)
    from nerve.hf.run import predict_words

    base = tag_recalls(gold, np.concatenate(predict_words(model, score_p, pad, bs)), T)
    evidence = {"tags": np.array(model.tags), "base": base, "support": np.bincount(gold, minlength=T).astype(np.int64)}
    cache = LayerCache(model, score_p, pad, bs)
    ranked_tags = np.bincount(labels, minlength=T) > 0
    rng = np.random.default_rng(spec.seed)
    from nerve.analysis.ranking import rank_units

    rows = []
    for i, site in enumerate(sites, 1):
        depth = model.sites().index(site) + 1  # the site's place in the model, input to output
        if progress is not None:
            progress(f"{site} (site {i} of {len(sites)}, {time.perf_counter() - t0:.0f} s so far)")
        values = None if spec.intervention == "zero" else means[site]
        n = model.site_units(site)
        draws = [rng.choice(n, spec.k, replace=False) for _ in range(spec.random_draws)]
        random_drop = base[None, :] - np.stack(
            [tag_recalls(gold, edited_predictions(cache, site, d, values), T) for d in draws])
        if "sensitivity" in spec.methods:
            evidence |= {f"{site}/s": grads[site]["sensitivity"], f"{site}/readout": grads[site]["readout"],
                         f"{site}/top": np.full((T, T), np.nan), f"{site}/random": base[None, :] - random_drop}
        seen: dict[tuple, np.ndarray] = {}
        for method in spec.methods:
            scores = grads[site][method] if method in grads.get(site, {}) else _class_scores(method, H[site], labels, T)
            order = rank_units(scores)
            for t in np.flatnonzero(ranked_tags & ~np.isnan(base)):
                units = tuple(sorted(order[t, : spec.k].tolist()))
                if units not in seen:
                    seen[units] = tag_recalls(gold, edited_predictions(cache, site, np.array(units), values), T)
                after = seen[units]
                if method == "sensitivity":
                    evidence[f"{site}/top"][t] = after
                drop = base - after
                others = [u for u in range(T) if u != t and not np.isnan(drop[u])]
                own, rest = float(drop[t]), float(np.mean(drop[others])) if others else float("nan")
                rd = random_drop[:, t]
                rows.append({"site": site, "depth": depth, "method": method, "tag": model.tags[t], "k": spec.k,
                             "recall": float(base[t]), "recall_after": float(after[t]), "own_drop": own,
                             "others_drop": rest, "selectivity": own - rest, "random_drop": float(rd.mean()),
                             "random_sd": float(rd.std(ddof=1)) if len(rd) > 1 else float("nan"),
                             "p_random": float((1 + np.sum(rd >= own)) / (len(rd) + 1)), "draws": len(rd),
                             "gold_tokens": int(np.sum(gold == t))})
    return DepthResult(rows, evidence)
