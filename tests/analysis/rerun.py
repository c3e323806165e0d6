"""A model re-run with a plain forward hook, the independent check of every intervention: each sentence alone
through the model, its ``encoder_out`` rows (L, n) replaced by ``edit(offset, rows)`` (offset: the sentence's
first token in the split)."""

from __future__ import annotations

import numpy as np
import torch

from nerve.analysis.capture import capture_activations
from nerve.analysis.checks import check_activations
from nerve.data.conll import read_conll
from nerve.data.prepare import encode_split
from nerve.model.hooks import HookPoint
from nerve.run import predict
from tests.analysis.analysis_synthetic import reference_scores


def split_activations(run, name):
    """(sentences, checked activations) of the run's split ``name`` ("dev", "test")."""
    path = getattr(run.cfg.data, name)
    sents = read_conll(path)
    arrays, _ = capture_activations(run, sents, path)
    return sents, check_activations(arrays)


def rerun_preds(run, sents, path, edit) -> np.ndarray:
    """int (n_tokens,): the flat predictions of the re-run, sentence by sentence, with ``edit`` in the hook."""
    enc = run.indexer()
    site = dict(run.model.named_modules())["encoder_out"]
    assert isinstance(site, HookPoint)
    offset, preds = 0, []
    for item in encode_split(enc, sents, path):
        def fn(module, inputs, output, at=offset):
            out = output.clone()
            out[0] = torch.as_tensor(edit(at, out[0].numpy().copy()), dtype=out.dtype)
            return out

        handle = site.register_forward_hook(fn)
        try:
            preds.append(predict(run.model, [item], enc.extra_vectors())[0])
        finally:
            handle.remove()
        offset += len(preds[-1])
    return np.array([int(i) for p in preds for i in p])


def rerun_scores(run, sents, path, edit) -> dict:
    """``reference_scores`` (scikit-learn and seqeval) of the re-run's predictions against the gold tags."""
    tags = run.vocabs.tags.itos
    flat_g = [tags.index(t) for s in sents for t in s.tags]
    starts = np.cumsum([0] + [len(s.tags) for s in sents[:-1]])
    return reference_scores(flat_g, rerun_preds(run, sents, path, edit).tolist(), tags, starts)
