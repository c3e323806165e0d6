"""The public Python API, for notebooks: train a tagger, tag sentences, read a site's activations with their
tokens, intervene on units, analyse, and read a whole study as one tidy pandas table.

Names follow what the field's users know: ``fit`` (scikit-learn) trains, ``Run.tag`` predicts (flair's
``predict``), ``Run.activations`` is TransformerLens' ``run_with_cache`` for one site over a split,
``Run.intervene`` a TransformerLens-style hook context, ``to_pandas`` gives tidy long tables (pyarrow, polars).
Everything here is reached as ``nerve.NAME`` (``nerve/__init__.py``); docs/API.md shows a worked example.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nerve.analysis.capture import capture_activations
from nerve.analysis.checks import check_activations
from nerve.analysis.core import INTERVENTIONS, SITES, AnalysisSpec
from nerve.analysis.interventions import pool_sampler
from nerve.analysis.pipeline import load_activations
from nerve.analyze import analyze_run, plot_analysis
from nerve.config import load_config
from nerve.data.conll import Sentence
from nerve.data.prepare import resolve_data
from nerve.errors import NerveError
from nerve.model.hooks import ablate
from nerve.run import LoadedRun, predict, read_split
from nerve.run import load_run as _load_run
from nerve.tables import study_table, sweep_table
from nerve.text import columns, line_problem
from nerve.train import train

__all__ = ["Activations", "AnalysisResult", "HFRun", "Run", "Study", "fit", "load_run", "load_study"]


@dataclass(frozen=True)
class Activations:
    """A site's units over one split, one row per real token (sentences concatenated).

    tokens: (n_tokens,) words; sentence: int (n_tokens,) the sentence each token belongs to; h: float32
    (n_tokens, n_units); gold, pred: int (n_tokens,) tag ids (pred: the model's, as it decodes); tags: (T,) tag
    names; units: (n_units,) unit names; site: where they were read (``nerve.analysis.core.SITES``)."""

    tokens: list[str]
    sentence: np.ndarray
    h: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    tags: list[str]
    units: list[str]
    site: str = "encoder_out"

    def to_pandas(self) -> pd.DataFrame:
        """One row per token: sentence, position, token, gold and predicted tag, then one column per unit."""
        starts = np.flatnonzero(np.r_[True, self.sentence[1:] != self.sentence[:-1]])
        position = np.arange(len(self.tokens)) - np.repeat(starts, np.diff(np.r_[starts, len(self.tokens)]))
        tags = np.array(self.tags)
        head = pd.DataFrame({"sentence": self.sentence, "position": position, "token": self.tokens,
                             "gold": tags[self.gold], "pred": tags[self.pred]})
        return pd.concat([head, pd.DataFrame(self.h, columns=self.units)], axis=1)


class Run:
    """A trained run folder (``nerve train`` or ``fit``), loaded once: ``tag``, ``activations``, ``intervene``,
    ``analyze``. ``model`` is the torch module (its sites are ``nerve.model.hooks.HookPoint`` modules)."""

    def __init__(self, loaded: LoadedRun):
        self._run = loaded
        self.path: Path = loaded.path
        self.model = loaded.model
        self.tags: list[str] = list(loaded.vocabs.tags.itos)
        self.units: list[str] = list(loaded.model.unit_names())

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, {len(self.units)} units, {len(self.tags)} tags)"

    def tag(self, tokens: Sequence[str] | Sequence[Sequence[str]]) -> list[str] | list[list[str]]:
        """The predicted tags of one tokenised sentence (a list of words), or of several (a list of lists).

        Raises:
            NerveError: an empty sentence or a token that is not a non-empty string."""
        one = len(tokens) > 0 and isinstance(tokens[0], str)
        sents = [list(tokens)] if one else [list(s) for s in tokens]
        for i, s in enumerate(sents):  # a word is one token under the readers' rule (``nerve.text``)
            if not s or not all(isinstance(w, str) and columns(w) == [w] and line_problem(w) is None for w in s):
                raise NerveError(f"tag: sentence {i}: expected a non-empty list of words without spaces, tabs or "
                                 "control characters")
        enc = self._run.indexer()
        items = [enc.encode(Sentence(s, columns=[[w] for w in s]), labelled=False, allow_extra=True,
                            path="<tag>", tag_column=False) for s in sents]
        pred = predict(self.model, items, enc.extra_vectors(), device=self._run.device)
        out = [[self.tags[int(i)] for i in p] for p in pred]
        return out[0] if one else out

    def activations(self, split: str = "dev", site: str = "encoder_out") -> Activations:
        """The ``site``'s units on ``split`` ("dev", "test", "train" or a CoNLL file), tokens included; inside
        ``intervene`` the intervened model's (its predictions; the site's values as the hook leaves them)."""
        if SITES.get(site).hook != "encoder_out":
            raise NerveError(f"--site {site}: this model reads units at encoder_out only")
        path, sents = read_split(self._run, split)
        arrays, words = capture_activations(self._run, sents, path)
        lengths = [len(w) for w in words]
        return Activations([w for s in words for w in s], np.repeat(np.arange(len(words)), lengths), arrays["h"],
                           arrays["gold"], arrays["pred"], [str(t) for t in arrays["tags"]],
                           [str(u) for u in arrays["neurons"]], site)

    @contextlib.contextmanager
    def intervene(self, units: Sequence[int | str], how: str = "zero", reference: str = "dev",
                  seed: int = 0) -> Iterator[Run]:
        """Within the block, the ``units`` (indices or names) of the model's site are replaced as the
        intervention ``how`` says (``nerve.analysis.core.INTERVENTIONS``: "zero"; "mean" over the ``reference``
        split's tokens, the split the units were ranked on; "resample": at each position, the units' values at
        one token of the ``reference`` split drawn at random, seeded by ``seed``); the hook is removed on exit.

        Example: ``with run.intervene([3, 7], "mean"): run.tag(["EU", "rejects", "German", "call"])``."""
        intervention = INTERVENTIONS.get(how)
        idx = [self._unit(u) for u in units]
        if intervention.per_token:
            values = pool_sampler(self.activations(reference).h, seed)
        else:
            values = intervention.values(self.activations(reference).h if intervention.needs_reference else None)
        with ablate(self.model, idx, values=values):
            yield self

    def _unit(self, u: int | str) -> int:
        if isinstance(u, (int, np.integer)) and not isinstance(u, bool) and 0 <= u < len(self.units):
            return int(u)
        if isinstance(u, str) and u in self.units:
            return self.units.index(u)
        raise NerveError(f"unit {u!r}: expected an index in 0..{len(self.units) - 1} or a name like "
                         f"{self.units[0]!r}")

    def analyze(self, spec: AnalysisSpec = AnalysisSpec(), out: str | os.PathLike | None = None,
                progress: bool = False) -> AnalysisResult:
        """``nerve analyze`` with ``spec`` into ``out`` (default: the run's ``analysis`` folder); the result
        reads its tables."""
        folder = Path(out) if out is not None else self.path / "analysis"
        analyze_run(str(self.path), str(folder), spec, device=str(self._run.device), progress=progress)
        return AnalysisResult(folder)


class HFRun(Run):
    """A fine-tuned Hugging Face run (``nerve train MODEL_FOLDER``): the same calls, at any of its sites
    (``sites``: ffn1, layer1, …, classifier_in; words read at their first sub-token, or the mean of their
    sub-tokens as the run's ``model.pooling`` says)."""

    def __init__(self, loaded):
        self._run = loaded
        self.path: Path = loaded.path
        self.model = loaded.model
        self.tags: list[str] = list(loaded.tags)
        self.sites: list[str] = loaded.model.sites()
        self.units: list[str] = list(loaded.model.unit_names())

    def tag(self, tokens: Sequence[str] | Sequence[Sequence[str]]) -> list[str] | list[list[str]]:
        """The predicted tags of one tokenised sentence (a list of words), or of several (a list of lists)."""
        from nerve.hf.run import predict_words

        one = len(tokens) > 0 and isinstance(tokens[0], str)
        sents = [list(tokens)] if one else [list(s) for s in tokens]
        for i, s in enumerate(sents):
            if not s or not all(isinstance(w, str) and w.strip() == w and w for w in s):
                raise NerveError(f"tag: sentence {i}: expected a non-empty list of non-empty words")
        pieces = self._run.pieces([Sentence(s) for s in sents], "<tag>")
        pred = predict_words(self.model, pieces, self._run.tokenizer.pad_token_id, len(pieces))
        out = [[self.tags[int(i)] for i in p] for p in pred]
        return out[0] if one else out

    def activations(self, split: str = "dev", site: str = "classifier_in") -> Activations:
        """``site``'s word-level units on ``split``; inside ``intervene`` the intervened model's."""
        path, sents = read_split(self._run, split)
        arrays, words = self._run.capture(sents, path, site)
        lengths = [len(w) for w in words]
        return Activations([w for s in words for w in s], np.repeat(np.arange(len(words)), lengths), arrays["h"],
                           arrays["gold"], arrays["pred"], [str(t) for t in arrays["tags"]],
                           [str(u) for u in arrays["neurons"]], site)

    @contextlib.contextmanager
    def intervene(self, units: Sequence[int], how: str = "zero", reference: str = "dev", seed: int = 0,
                  site: str = "classifier_in") -> Iterator[HFRun]:
        """``Run.intervene`` at ``site``: the units of each word (at a sub-token site, the sub-tokens the run's
        pooling reads: first sub-tokens, or all of a word's) become 0, the ``reference`` split's mean, or a
        resampled token's values."""
        import torch

        if site not in self.sites:
            raise NerveError(f"site {site!r}: expected one of {', '.join(self.sites)}")
        n = self.model.site_units(site)
        idx = []
        for u in units:
            if not (isinstance(u, (int, np.integer)) and not isinstance(u, bool) and 0 <= u < n):
                raise NerveError(f"unit {u!r}: expected an index in 0..{n - 1} of site {site}")
            idx.append(int(u))
        intervention = INTERVENTIONS.get(how)
        ref = self.activations(reference, site).h if intervention.needs_reference or intervention.per_token else None
        sample = pool_sampler(ref, seed) if intervention.per_token else None
        fill = None if sample is not None else intervention.values(ref)

        def edit(values):
            out = values.clone()
            if sample is not None:
                out[..., idx] = torch.as_tensor(sample(tuple(values.shape[:-1])))[..., idx].to(out)
            else:
                out[..., idx] = 0.0 if fill is None else torch.as_tensor(fill, dtype=out.dtype)[idx]
            return out

        with self.model.edit_words(site, edit):
            yield self


class AnalysisResult:
    """An analysis folder's tables (``nerve analyze`` / ``Run.analyze``): ``sensitivity`` (units × tags),
    ``activations`` (the archive), ``to_pandas`` (the sweeps, tidy), ``plot`` (its figures)."""

    def __init__(self, folder: str | os.PathLike):
        from nerve.analysis.compare import load_run_analysis

        self._analysed = load_run_analysis(folder)  # checks the completion marker and every file's SHA-256
        self.folder = Path(self._analysed.analysis_dir)

    @property
    def sensitivity(self) -> pd.DataFrame:
        """(units × tags) sensitivity: rows the unit names, columns the tags."""
        r = self._analysed
        return pd.DataFrame(r.s, index=pd.Index(r.neurons, name="unit"), columns=pd.Index(r.tags, name="tag"))

    def activations(self):
        """The analysed split's archive (``checks.Activations``: h, gold, pred, W, b, tags, units, CRF)."""
        return check_activations(load_activations(self.folder / "activations.npz"))

    def to_pandas(self) -> pd.DataFrame:
        """Every sweep row of the analysis as one tidy long table (``nerve.tables.sweep_table``)."""
        return sweep_table(self.folder)

    def plot(self, out: str | os.PathLike, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
        """Draw every figure of the analysis into ``out`` in ``formats`` (``nerve plot analysis``)."""
        return plot_analysis(self.folder, out, formats)


class Study:
    """A study folder (``nerve study``): ``to_pandas`` gives one tidy long table of every run's sweeps."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not (self.folder / "study.json").is_file():
            raise NerveError(f"{self.folder}: no study.json (expected the folder of a finished `nerve study`)")

    def to_pandas(self) -> pd.DataFrame:
        """One row per (variant, seed, method, intervention, rank_split, score_split, tag, eval_tag, k,
        selection, draw, metric) with its value (``nerve.tables.study_table``)."""
        return study_table(self.folder)


def load_run(path: str | os.PathLike, device: str = "cpu") -> Run:
    """A finished run folder (``nerve train`` or ``fit``; a fine-tuned Hugging Face model's gives an ``HFRun``),
    loaded on ``device`` with its files checked against the SHA-256 training recorded; a changed, unfinished or
    foreign folder is a one-line ``NerveError``."""
    from nerve.hf.run import is_hf_run, load_hf_run

    return HFRun(load_hf_run(path, device)) if is_hf_run(path) else Run(_load_run(path, device))


def load_study(path: str | os.PathLike) -> Study:
    """A finished study folder (``nerve study``); ``.to_pandas()`` reads every run's sweeps as one tidy table.

    Raises:
        NerveError: the folder holds no study.json."""
    return Study(path)


def fit(config: str, out: str | os.PathLike, data: str | None = None, settings: Sequence[str] = (),
        device: str = "cpu") -> Run:
    """Train a tagger as ``nerve train CONFIG --data DATA --out OUT --set ...`` does (resuming a run left
    unfinished) and load it. ``config``: a TOML file or preset name; ``settings``: ``section.key=value`` items."""
    from nerve.config.presets import resolve_config

    cfg = resolve_data(load_config(resolve_config(config), list(settings)), data)
    train(cfg, out, device, progress=False)
    return load_run(out, device)
