"""The analysis' core concepts, each in one place: where units are read and written (``Site``), in which
coordinates (``Basis``), how they are ranked for a tag (``Method``), what an intervened unit becomes
(``Intervention``), and the frozen ``AnalysisSpec`` that names one analysis and is validated once.

A new ranking method or intervention is one registered class (``METHODS.register`` /
``INTERVENTIONS.register``) with its test; everything downstream (the analysis, the study, the live server, the
public API) looks it up by name here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from nerve.analysis.ablation import MAX_RANDOM_DRAWS
from nerve.analysis.interventions import INTERVENTIONS, Intervention, Mean, Resample, Zero  # noqa: F401 (re-exported)
from nerve.analysis.methods import (
    PROBE_OPTIONS,
    RankInput,
    gradxact_scores,
    ig_scores,
    probe_scores,
    probeless_scores,
    random_scores,
    selectivity_scores,
    sensitivity_scores,
)
from nerve.analysis.registry import Registry
from nerve.errors import NerveError


# ---------------------------------------------------------------------------------------------------- sites
@dataclass(frozen=True)
class Site:
    """Where activations are read and written: a named hook point (``nerve.model.hooks.HookPoint``) of the model.

    name: the site's name in specs and files; hook: the hook point's module name; what: one line for a reader."""

    name: str
    hook: str
    what: str


SITES: Registry[Site] = Registry("site", "--site")
SITES.add(Site("encoder_out", "encoder_out",
               "the encoder output after dropout, the only input of the tag projection (one unit per hidden unit)"))
SITES.add(Site("classifier_in", "classifier_in",
               "a Hugging Face tagger's tag-layer input: each word's first sub-token in the last layer, after dropout "
               "(nerve.hf; its other sites, layerN and ffnN, through Run.activations)"))


# ---------------------------------------------------------------------------------------------------- bases
class Basis:
    """Coordinates of a site's activations: h (n_tokens, n) = a·D + e, a (n_tokens, m) the basis units, D (m, n)
    the directions, fitted on the ranking split (``nerve.analysis.bases``: the fit, the units and the fixed rest e)."""

    name: ClassVar[str]
    what: ClassVar[str]

    def fit(self, h: np.ndarray, seed: int):
        """The fitted basis (``bases.FittedBasis``) of the ranking split's (N, n) activations; None: the neurons."""
        from nerve.analysis.bases import fit_basis

        return fit_basis(self.name, h, seed)


BASES: Registry[Basis] = Registry("basis", "--basis")


@BASES.register
class Neurons(Basis):
    """The identity basis: a unit is a neuron of the site (the study's units)."""

    name = "neurons"
    what = "the site's neurons (the identity)"


class FittedKind(Basis):
    """A basis fitted on the ranking split (``nerve.analysis.bases.FITTERS``), registered by name."""

    def __init__(self, name: str, what: str):
        self.name, self.what = name, what


BASES.add(FittedKind("pca", "principal components of the ranking split (all of them)"))
BASES.add(FittedKind("ica", "independent components of the ranking split (FastICA, all of them)"))
BASES.add(FittedKind("sae", "sparse autoencoder features of the ranking split (4x as many as units)"))


# ---------------------------------------------------------------------------------------------------- methods
class Method:
    """A ranking method: the ranking split's unit values and labels (``RankInput``) in, (n, T) scores out; a
    tag's ranking is its column sorted descending, ties by unit index (``nerve.analysis.ranking.rank_units``).

    ``seeded``: the scores depend on ``seed``; ``draws``: the method is the random baseline, whose rows are
    the seeded random draws of the sweep, not one ranking."""

    name: ClassVar[str]
    seeded: ClassVar[bool] = False
    draws: ClassVar[bool] = False

    def scores(self, x: RankInput, seed: int, target: str) -> np.ndarray:
        """float (n, T) unit scores from the ranking split's ``x`` (h (n_tokens, n), labels (n_tokens,), W (T, n));
        ``seed`` for seeded methods, ``target`` the attribution methods' token score ("logprob", "marginal" or
        "logit"). NaN columns for tags without tokens."""
        raise NotImplementedError


METHODS: Registry[Method] = Registry("ranking method", "--methods")


def _wrapped(method_name: str, fn: Callable[..., np.ndarray], takes_target: bool = False) -> Method:
    """A registered ``Method`` around a pure scoring function of ``analysis/methods.py``: ``fn(x)``, or
    ``fn(x, target)`` for the attribution methods."""
    def scores(self, x, seed, target):
        return fn(x, target) if takes_target else fn(x)

    return type(f"_{method_name}", (Method,), {"name": method_name, "__doc__": fn.__doc__, "scores": scores})()


METHODS.add(_wrapped("sensitivity", sensitivity_scores))
METHODS.add(_wrapped("probeless", probeless_scores))
METHODS.add(_wrapped("selectivity", selectivity_scores))


@METHODS.register
class Probe(Method):
    __doc__ = probe_scores.__doc__
    name = "probe"
    seeded = True

    def scores(self, x: RankInput, seed: int, target: str) -> np.ndarray:
        """float (n, T): ``probe_scores(x, seed)``."""
        return probe_scores(x, seed)


METHODS.add(_wrapped("gradxact", gradxact_scores, takes_target=True))
METHODS.add(_wrapped("ig", ig_scores, takes_target=True))


@METHODS.register
class IgMean(Method):
    """Integrated gradients from the ranking split's mean (the mean intervention's value, and the resample
    intervention's expected value) instead of 0: attributions relative to what the mean and resample
    interventions set a unit to (``ig_scores`` with ``baseline``)."""

    name = "ig_mean"

    def scores(self, x: RankInput, seed: int, target: str) -> np.ndarray:
        """float (n, T): ``ig_scores(x, target, baseline=Mean().values(x.h))``."""
        return ig_scores(x, target, baseline=Mean().values(x.h))


@METHODS.register
class Random(Method):
    __doc__ = random_scores.__doc__
    name = "random"
    seeded = True
    draws = True

    def scores(self, x: RankInput, seed: int, target: str) -> np.ndarray:
        """float (n, T): ``random_scores(x, seed)``."""
        return random_scores(x, seed)


# ------------------------------------------------------------------------------------------------------- spec
BUCKETS = ("predicted", "gold")
MAX_JUDGED_DRAWS = 100_000  # draws at the judged ks: one decode a k each, none kept as rows
FIGURE_FORMATS = ("png", "svg")  # what an analysis draws unless told otherwise
FIGURE_CHOICES = ("png", "svg", "pdf")  # what it can draw (PNG at 300 dpi)


def _names(values: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split(",")
    return tuple(v.strip() for v in values if v.strip())


@dataclass(frozen=True)
class AnalysisSpec:
    """One analysis of a run, frozen and validated once (here, at construction), with its fingerprint options.

    Args:
        split: the scoring split: the activations analysed and the split every ablation is scored on
            ("dev", "test", "train" or a CoNLL file path).
        bucket: sensitivity over the model's "predicted" labels or the "gold" ones.
        max_k: the largest number of ablated units (None: every unit; checked against the model when bound).
        random_draws: random unit sets of the baseline, 0..``MAX_RANDOM_DRAWS``; seed: their seed (and the
            seeded methods').
        cluster: order the heatmaps' units by clustered profiles.
        methods: ranking methods (``METHODS``) judged by held-out top-k intervention; () for none.
        rank_split: the split the methods rank on (None: ``split``); only with ``methods``.
        interventions: what an intervened unit becomes (``INTERVENTIONS``) in the methods' sweeps; only with
            ``methods`` (the base analysis always zero-ablates, as Xin, Lin & Yu).
        sufficiency: also sweep each method's top k kept with every other unit intervened (sufficiency.csv);
            only with ``methods``.
        translation: also move each B- tag's top k units to another B- tag's (or O's) mean on that tag's tokens
            and count how often the prediction follows (Antverg & Belinkov 2022; translation.csv); only with
            ``methods``.
        judged_draws, matched_draws: random k-unit sets, and sets matched to the top k's variance deciles per
            method and tag, decoded at the judged ks alone (``analysis/draws.py``; methods_baselines.csv); 0:
            none; only with ``methods``.
        figures: the figure formats (some of png, svg, pdf; () for tables only).
        site, basis: where the units are read (``SITES``) and in which coordinates (``BASES``).
        leace: also erase each tag's linear information from the site (LEACE, fitted on the ranking split) and
            score the edited model (leace.csv, leace_summary.csv: ``nerve.analysis.leace``).

    Raises:
        NerveError: one line naming the option and what was expected.
    """

    split: str = "dev"
    bucket: str = "predicted"
    max_k: int | None = None
    random_draws: int = 20
    seed: int = 0
    cluster: bool = False
    methods: tuple[str, ...] = ()
    rank_split: str | None = None
    interventions: tuple[str, ...] = ("zero",)
    sufficiency: bool = False
    judged_draws: int = 0
    matched_draws: int = 0
    translation: bool = False
    figures: tuple[str, ...] = FIGURE_FORMATS
    site: str = "encoder_out"
    basis: str = "neurons"
    leace: bool = False

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("methods", _names(self.methods))
        set_("interventions", _names(self.interventions))
        set_("figures", _names(self.figures))
        if self.bucket not in BUCKETS:
            raise NerveError(f"--bucket {self.bucket}: expected one of {', '.join(BUCKETS)}")
        if self.max_k is not None and (isinstance(self.max_k, bool) or not isinstance(self.max_k, (int, np.integer))
                                       or self.max_k < 0):
            raise NerveError(f"--max-k {self.max_k}: expected a number >= 0")
        if (isinstance(self.random_draws, bool) or not isinstance(self.random_draws, (int, np.integer))
                or not 0 <= self.random_draws <= MAX_RANDOM_DRAWS):
            raise NerveError(f"--random-draws {self.random_draws}: expected a number in 0..{MAX_RANDOM_DRAWS:,}")
        for option, value in (("--judged-draws", self.judged_draws), ("--matched-draws", self.matched_draws)):
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or not 0 <= value <= MAX_JUDGED_DRAWS):
                raise NerveError(f"{option} {value}: expected a number in 0..{MAX_JUDGED_DRAWS:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**63:
            raise NerveError(f"--seed {self.seed}: expected a number >= 0")
        bad = [f for f in self.figures if f not in FIGURE_CHOICES]
        if bad:
            raise NerveError(f"figure formats {','.join(self.figures)}: expected some of {','.join(FIGURE_CHOICES)}")
        SITES.get(self.site)
        BASES.get(self.basis)
        self._check_methods()

    def _check_methods(self) -> None:
        for m in self.methods:
            METHODS.get(m)
        for what, values in (("--methods", self.methods), ("--ablate", self.interventions)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise NerveError(f"{what} {','.join(values)}: {twice[0]} is given twice")
        for a in self.interventions:
            INTERVENTIONS.get(a)
        if not self.interventions:
            raise NerveError(f"--ablate: expected some of {','.join(INTERVENTIONS.names())}")
        if not self.methods:
            if self.rank_split is not None:
                raise NerveError(f"--rank-split {self.rank_split}: only the --methods rank on it; give --methods")
            if self.sufficiency:
                raise NerveError("--sufficiency: only the --methods sweeps take it; give --methods")
            if self.judged_draws or self.matched_draws:
                raise NerveError("--judged-draws, --matched-draws: only the --methods sweeps take them; give --methods")
            if self.translation:
                raise NerveError("--translation: only the --methods rankings take it; give --methods")
            if self.interventions != ("zero",):
                raise NerveError(f"--ablate {','.join(self.interventions)}: only the --methods sweeps take it; "
                                 "give --methods (the base sweep always zero-ablates)")

    @property
    def ranking_split(self) -> str:
        """The split the methods rank on (``rank_split``, else ``split``)."""
        return self.rank_split or self.split

    def bound_max_k(self, n_units: int) -> int:
        """``max_k`` for a model of ``n_units`` units (every unit when None).

        Raises:
            NerveError: max_k larger than the model's number of units."""
        if self.max_k is not None and self.max_k > n_units:
            raise NerveError(f"--max-k {self.max_k}: the model has {n_units} units; expected 0..{n_units}")
        return n_units if self.max_k is None else int(self.max_k)

    def options(self) -> dict:
        """The options that change the base analysis' outputs (part of its fingerprint)."""
        return {"bucket": self.bucket, "max_k": self.max_k, "random_draws": int(self.random_draws),
                "seed": int(self.seed), "cluster": bool(self.cluster), "figures": list(self.figures),
                **({"basis": self.basis_options()} if self.basis != "neurons" else {}),  # earlier fingerprints hold
                **({"leace": "each tag's indicator, fitted on the ranking split (concept-erasure)"} if self.leace
                   else {})}

    def basis_options(self) -> dict:
        """The basis and the settings of its fit (part of the fingerprint)."""
        from nerve.analysis.bases import ICA_OPTIONS, ICA_TOKENS
        from nerve.analysis.sae import SAE_OPTIONS

        fit = {"ica": {**ICA_OPTIONS, "tokens": ICA_TOKENS}, "sae": SAE_OPTIONS}.get(self.basis, {})
        return {"name": self.basis, "fitted_on": "the ranking split", **fit}

    def method_options(self, rank_path: str, rank_sha256: str) -> dict:
        """The options of the methods part (beside ``options``), with the ranking split's file and SHA-256."""
        return {"methods": list(self.methods), "rank_split": self.ranking_split, "rank_file": str(rank_path),
                "rank_sha256": rank_sha256, "ablate": list(self.interventions),
                **({"sufficiency": True} if self.sufficiency else {}),  # absent when off: earlier fingerprints hold
                **({"judged_draws": int(self.judged_draws), "matched_draws": int(self.matched_draws)}
                   if self.judged_draws or self.matched_draws else {}),
                **({"translation": "B- and O pairs, gold tokens, set to the target's mean"} if self.translation
                   else {}),
                **({"probe": PROBE_OPTIONS} if "probe" in self.methods else {})}  # its solver and tolerance

    def replace(self, **changes) -> AnalysisSpec:
        """A copy with ``changes``, validated again."""
        return AnalysisSpec(**{**asdict(self), **changes})

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
