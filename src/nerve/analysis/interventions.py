"""What an intervened unit becomes: one registered ``Intervention`` per kind (zero, mean, resample), looked up by
name everywhere (the analysis' sweeps, the study, the findings, ``Run.intervene``, ``nerve serve``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from nerve.analysis.registry import Registry
from nerve.errors import NerveError


class Intervention:
    """What an intervened unit becomes. One meaning everywhere: the analysis' sweeps, the study, the findings,
    the public API's ``Run.intervene`` and the live server (``nerve serve``).

    ``values(reference)`` gives the (n,) value each unit takes, computed from ``reference``: the
    (n_tokens, n) activations of the reference split — the split the units were ranked on (``--rank-split``,
    which is the analysed split when there is no separate one). ``None`` means 0 (computed without adding
    zeros, so that zero ablation is bit-for-bit the plain edit)."""

    name: ClassVar[str]
    what: ClassVar[str]
    needs_reference: ClassVar[bool] = True  # ``values`` reads the reference split (else it may be None)
    per_token: ClassVar[bool] = False  # the value differs token by token (``token_values``), not one per unit

    def values(self, reference: np.ndarray | None) -> np.ndarray | None:
        """float64 (n,) the value each unit takes, from the reference split's (n_tokens, n) activations; None: 0."""
        raise NotImplementedError

    def token_values(self, reference: np.ndarray | None, scored: np.ndarray, seed: int) -> np.ndarray | None:
        """The values at the tokens of ``scored`` (the (n_tokens, n) activations the intervention is applied to):
        float64 (n,) one per unit (``values(reference)``), or (n_tokens, n) one per token and unit for a
        ``per_token`` intervention (drawn with ``seed``); None: 0."""
        return self.values(reference)


INTERVENTIONS: Registry[Intervention] = Registry("intervention", "--ablate")


@INTERVENTIONS.register
class Zero(Intervention):
    """The unit is set to 0 (Xin, Lin & Yu 2019)."""

    name = "zero"
    what = "set to 0"
    needs_reference = False

    def values(self, reference: np.ndarray | None) -> None:
        """None: the units become 0 (the reference is not read)."""
        return None


@INTERVENTIONS.register
class Mean(Intervention):
    """The unit is set to its mean over the reference split's tokens (float64)."""

    name = "mean"
    what = "set to its mean over the reference (ranking) split's tokens"

    def values(self, reference: np.ndarray | None) -> np.ndarray:
        """float64 (n,) each unit's mean over the reference split's (n_tokens, n) activations."""
        return _reference(reference, self.name).astype(np.float64).mean(axis=0)  # shape: (n,)


@INTERVENTIONS.register
class Resample(Intervention):
    """Each token's intervened units take their values at one random other token of the split they are scored
    on (drawn uniformly with replacement among the other tokens, seeded; one source token for every unit of a
    token): each unit keeps its marginal distribution over the split, and the intervened units their joint one
    (resample ablation: Chan et al. 2022, "Causal scrubbing"; Mueller et al. 2025, MIB)."""

    name = "resample"
    what = "set to its value at a random other token of the scored split (seeded)"
    needs_reference = False
    per_token = True

    def values(self, reference: np.ndarray | None) -> np.ndarray:
        """Not one value per unit: a one-line ``NerveError`` (use ``token_values``)."""
        raise NerveError("--ablate resample: each token takes the values of a random other token; there is no one "
                         "value per unit")

    def token_values(self, reference: np.ndarray | None, scored: np.ndarray, seed: int) -> np.ndarray:
        """float64 (n_tokens, n): row t is ``scored``'s row at token ``draw(n_tokens, seed)[t]``."""
        h = np.asarray(scored)
        if h.ndim != 2 or len(h) < 2:
            raise NerveError(f"--ablate resample: needs the activations of 2 tokens or more, got shape {h.shape}")
        return h[self.draw(len(h), seed)].astype(np.float64)  # shape: (n_tokens, n)

    @staticmethod
    def draw(n_tokens: int, seed: int) -> np.ndarray:
        """intp (n_tokens,): for each token t, the other token (≠ t, uniform, seeded) it takes its values from."""
        j = np.random.default_rng(seed).integers(0, n_tokens - 1, size=n_tokens)  # shape: (n_tokens,)
        return j + (j >= np.arange(n_tokens))  # skip t itself


def pool_sampler(pool: np.ndarray, seed: int) -> Callable[[tuple[int, ...]], np.ndarray]:
    """A per-token intervention outside a split (``Run.intervene``, ``nerve serve``: the edited sentences are not
    the split the values come from): ``sample(shape)`` gives float32 ``shape + (n,)`` rows of ``pool``
    ((n_tokens, n) activations of the reference split), each a token drawn uniformly (seeded, with replacement),
    one token for every unit of a position."""
    rows = np.asarray(pool, dtype=np.float32)
    if rows.ndim != 2 or len(rows) == 0:
        raise NerveError(f"resample: needs the reference split's activations (tokens x units), got {rows.shape}")
    rng = np.random.default_rng(seed)
    return lambda shape: rows[rng.integers(0, len(rows), size=shape)]  # shape: (*shape, n)


def _reference(reference: np.ndarray | None, name: str) -> np.ndarray:
    if reference is None or np.ndim(reference) != 2 or len(reference) == 0:
        raise NerveError(f"{name} ablation: needs the reference split's activations (tokens x units)")
    return np.asarray(reference)
