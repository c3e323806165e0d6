"""Capture a trained run's analysis-site activations on a split, then analyse or export them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from nerve.errors import NerveError
from nerve.io import atomic_write_text


def capture_activations(run, sents, path: str) -> tuple[dict, list]:
    """Run the model (eval mode) over ``sents`` and collect the analysis-site units of every real token.

    Returns:
        (arrays, words): arrays as stored in ``activations.npz`` — h float32 (n_tokens, n), gold/pred int64
        (n_tokens,), tags (n_tags,), W float32 (n_tags, n), b float32 (n_tags,), neurons (n,), sentence_starts
        int64 (n_sentences,), decoder, and crf_start/crf_transitions/crf_end for CRF models — and the words of
        each non-empty sentence.
    """
    if hasattr(run, "capture"):  # a fine-tuned Hugging Face run (``nerve.hf.run.LoadedHFRun``): its tag layer's input
        return run.capture(sents, path)
    from nerve.data.batching import batches, length_sorted
    from nerve.data.prepare import encode_split
    from nerve.model.hooks import capture

    model = run.model.eval()
    enc = run.indexer()
    items = encode_split(enc, sents, path)
    keep = [i for i, it in enumerate(items) if len(it.words)]
    if not keep:
        raise NerveError(f"{path}: no tokens to analyse")
    extra = enc.extra_vectors()
    ext = None if extra is None else torch.from_numpy(extra).to(run.device)
    n = model.n_units
    h_sent: dict[int, np.ndarray] = {}
    p_sent: dict[int, np.ndarray] = {}
    with torch.no_grad(), capture(model) as store:
        for idx, batch in batches(items, run.cfg.train.eval_batch_size, order=length_sorted(items),
                                  with_chars=model.char is not None):
            store.clear()
            pred = model.decode(batch.to(run.device), ext).cpu().numpy()
            h = store[0].cpu().numpy()
            for row, i in enumerate(idx):
                L = len(items[i].words)
                h_sent[i], p_sent[i] = h[row, :L], pred[row, :L]
    lengths = np.array([len(items[i].words) for i in keep])
    arrays = {
        "h": np.concatenate([h_sent[i] for i in keep]).astype(np.float32).reshape(-1, n),
        "gold": np.concatenate([items[i].tags for i in keep]).astype(np.int64),
        "pred": np.concatenate([p_sent[i] for i in keep]).astype(np.int64),
        "tags": np.array(run.vocabs.tags.itos),
        "W": model.hidden2tag.weight.detach().cpu().numpy().astype(np.float32),
        "b": model.hidden2tag.bias.detach().cpu().numpy().astype(np.float32),
        "neurons": np.array(model.unit_names()),
        "sentence_starts": np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        "decoder": np.array("crf" if model.crf is not None else "softmax"),
    }
    if model.crf is not None:
        start, trans, end = (t.detach().cpu().numpy().astype(np.float32) for t in model.crf.effective_transitions())
        arrays.update(crf_start=start, crf_transitions=trans, crf_end=end)
    return arrays, [sents[i].words for i in keep]


ANALYSIS_FORMAT = 4  # 2: ablation rows score precision, recall, F1 and F1:type; method summaries per score; 3: the
# warm-started probe, methods_scores.npz and methods_agreement.csv, the compiled CRF Viterbi; 4: the per-sentence
# counts (ablation_sentences.npz, methods_sentences.npz) and a tag absent from the ranking split left unjudged


def analysis_identity(hashes: dict[str, str], split_path: str, split: str, options: dict) -> dict:
    """What an analysis of a run is made from: the SHA-256 of the run's model, vocabulary and config files (as
    loaded: ``LoadedRun.hashes``, or read from the run folder by ``run_hashes``), the split scored (name and
    SHA-256) and the analysis options. Its fingerprint names the analysis."""
    import nerve
    from nerve.folder import sha256_file
    from nerve.run import CONFIG, MODEL, VOCAB

    return {"kind": "analysis", "model": hashes[MODEL], "vocab": hashes[VOCAB], "config": hashes[CONFIG],
            "split": {"name": split, "sha256": sha256_file(split_path)}, "options": options,
            "nerve": nerve.__version__, "format": ANALYSIS_FORMAT}


def run_hashes(run_dir: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of a run folder's config, vocab and model files."""
    from nerve.folder import sha256_file
    from nerve.run import CONFIG, MODEL, VOCAB

    return {name: sha256_file(Path(run_dir) / name) for name in (CONFIG, VOCAB, MODEL)}


def export_neurox(run_dir: str, split: str, out_path: str, device: str = "cpu") -> int:
    """Write activations in NeuroX's JSON format: one line per sentence,
    ``{"linex_index": i, "features": [{"token": w, "layers": [{"index": 0, "values": [...]}]}, ...]}``,
    plus ``OUT.tokens.txt`` (words) and ``OUT.labels.txt`` (gold tags), one sentence per line, as NeuroX's
    ``load_data`` reads them."""
    from nerve.run import load_run, read_split

    run = load_run(run_dir, device)
    path, sents = read_split(run, split)
    arrays, words = capture_activations(run, sents, path)
    starts = list(arrays["sentence_starts"]) + [len(arrays["h"])]
    tags = arrays["tags"]
    lines, labels = [], []
    for i, ws in enumerate(words):
        h = arrays["h"][starts[i]: starts[i + 1]]
        feats = [{"token": w, "layers": [{"index": 0, "values": [round(float(x), 6) for x in v]}]}
                 for w, v in zip(ws, h)]
        lines.append(json.dumps({"linex_index": i, "features": feats}))
        labels.append(" ".join(tags[g] for g in arrays["gold"][starts[i]: starts[i + 1]]))
    atomic_write_text(out_path, "\n".join(lines) + "\n")
    atomic_write_text(f"{out_path}.tokens.txt", "\n".join(" ".join(ws) for ws in words) + "\n")
    atomic_write_text(f"{out_path}.labels.txt", "\n".join(labels) + "\n")
    return len(words)
