"""Argument checks shared by the analysis functions, raising one-line errors that say what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from nerve.errors import NerveError

DECODERS = ("softmax", "crf")
REQUIRED_KEYS = ("h", "gold", "pred", "tags", "W", "b", "neurons", "sentence_starts", "decoder")
CRF_KEYS = ("crf_start", "crf_transitions", "crf_end")


class AnalysisInputError(NerveError, ValueError):
    """Bad analysis input: a ValueError for API callers, a one-line NerveError for the CLI."""


def float_matrix(x, name: str, shape: tuple | None = None) -> np.ndarray:
    """``x`` as a finite float ndarray, checking the number of dimensions and any fixed sizes.

    Args:
        x: array-like.
        name: argument name used in the error message.
        shape: expected shape, ``None`` entries free (e.g. ``(None, 50)``).
    """
    a = np.asarray(x)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise AnalysisInputError(f"{name}: expected a float array, got dtype {a.dtype}")
    if shape is not None and (a.ndim != len(shape) or any(e is not None and e != s for e, s in zip(shape, a.shape))):
        want = "(" + ", ".join("*" if e is None else str(e) for e in shape) + ")"
        raise AnalysisInputError(f"{name}: expected shape {want}, got {a.shape}")
    if a.size and not np.all(np.isfinite(a)):
        raise AnalysisInputError(f"{name}: expected finite values, found NaN or inf")
    return a


def bias_array(x, n_tokens: int, n_tags: int) -> np.ndarray:
    """The tag bias ``x``: float (T,), or (n_tokens, T) a bias per token (a basis' fixed part of each token's tag
    scores, ``nerve.analysis.bases``), as float64."""
    shape = (n_tokens, n_tags) if np.ndim(x) == 2 else (n_tags,)
    return float_matrix(x, "b", shape).astype(np.float64)


def labels_array(x, name: str, n_tokens: int, n_tags: int) -> np.ndarray:
    """``x`` as an intp (n_tokens,) array of tag ids in [0, n_tags)."""
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n_tokens:
        raise AnalysisInputError(f"{name}: expected shape ({n_tokens},), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise AnalysisInputError(f"{name}: expected integer tag ids, got dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n_tags):
        raise AnalysisInputError(f"{name}: expected tag ids in [0, {n_tags}), got {a.min()}..{a.max()}")
    return a.astype(np.intp, copy=False)


def sentence_starts_array(x, n_tokens: int) -> np.ndarray:
    """``x`` as an intp (n_sentences,) array: strictly increasing, first 0, all < n_tokens."""
    s = np.asarray(x)
    if s.ndim != 1 or (s.size and not np.issubdtype(s.dtype, np.integer)):
        raise AnalysisInputError(f"sentence_starts: expected a 1-d int array, got shape {s.shape} {s.dtype}")
    if n_tokens and (s.size == 0 or s[0] != 0 or np.any(np.diff(s) <= 0) or s[-1] >= n_tokens):
        raise AnalysisInputError(
            f"sentence_starts: expected strictly increasing indices in [0, {n_tokens}) starting with 0"
        )
    return s.astype(np.intp, copy=False)


def crf_arrays(crf, n_tags: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``crf`` (None or (start (T,), transitions (T, T) [from, to], end (T,))) as float64 arrays."""
    if crf is None:
        return None
    if len(crf) != 3:
        raise AnalysisInputError("crf: expected (start, transitions, end)")
    start = float_matrix(crf[0], "crf_start", (n_tags,)).astype(np.float64)
    trans = float_matrix(crf[1], "crf_transitions", (n_tags, n_tags)).astype(np.float64)
    end = float_matrix(crf[2], "crf_end", (n_tags,)).astype(np.float64)
    return start, trans, end


@dataclass(frozen=True)
class Activations:
    """The analysis site of one model on one split: what ``activations.npz`` holds, checked.

    h: float (n_tokens, n) the units of every real token; gold, pred: intp (n_tokens,) tag ids; tags: (T,)
    names; W: (T, n) and b: (T,) the tag projection (b: (n_tokens, T) in a basis with a fixed part per token,
    ``bases.project``); neurons: (n,) unit names; sentence_starts: intp (n_sentences,) first token of each
    sentence; decoder: "softmax" or "crf"; crf: None or (start (T,), transitions (T, T) [from, to],
    end (T,)) float64 with the constraints added.
    """

    h: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    tags: list[str]
    W: np.ndarray
    b: np.ndarray
    neurons: list[str]
    sentence_starts: np.ndarray
    decoder: str
    crf: tuple[np.ndarray, np.ndarray, np.ndarray] | None

    @property
    def n_tokens(self) -> int:
        return int(self.h.shape[0])

    @property
    def n_units(self) -> int:
        return int(self.h.shape[1])


def check_activations(arrays: Mapping) -> Activations:
    """Validate an activations archive (the arrays of ``activations.npz``) into ``Activations``.

    Raises:
        AnalysisInputError: a key is missing, or shapes, ranges or the decoder are inconsistent.
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise AnalysisInputError(f"activations: missing keys {', '.join(missing)}; expected {', '.join(REQUIRED_KEYS)}")
    h = float_matrix(arrays["h"], "h", (None, None))
    n_tokens, n = h.shape
    tags = [str(t) for t in np.asarray(arrays["tags"]).reshape(-1)]
    if not tags or len(set(tags)) != len(tags):
        raise AnalysisInputError(f"tags: expected distinct tag names, got {tags}")
    n_tags = len(tags)
    neurons = [str(u) for u in np.asarray(arrays["neurons"]).reshape(-1)]
    if len(neurons) != n:
        raise AnalysisInputError(f"neurons: expected {n} unit names (columns of h), got {len(neurons)}")
    W = float_matrix(arrays["W"], "W", (n_tags, n))
    b = float_matrix(arrays["b"], "b", (n_tokens, n_tags) if np.ndim(arrays["b"]) == 2 else (n_tags,))
    decoder = str(np.asarray(arrays["decoder"]).reshape(()).item()) if np.size(arrays["decoder"]) == 1 else ""
    if decoder not in DECODERS:
        raise AnalysisInputError(f"decoder: expected one of {', '.join(DECODERS)}, got {arrays['decoder']!r}")
    crf = None
    if decoder == "crf":
        absent = [k for k in CRF_KEYS if k not in arrays]
        if absent:
            raise AnalysisInputError(f"activations: decoder 'crf' needs keys {', '.join(absent)}")
        crf = crf_arrays(tuple(arrays[k] for k in CRF_KEYS), n_tags)
    return Activations(h=h, gold=labels_array(arrays["gold"], "gold", n_tokens, n_tags),
                       pred=labels_array(arrays["pred"], "pred", n_tokens, n_tags), tags=tags, W=W, b=b,
                       neurons=neurons, sentence_starts=sentence_starts_array(arrays["sentence_starts"], n_tokens),
                       decoder=decoder, crf=crf)
