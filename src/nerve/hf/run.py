"""A fine-tuned Hugging Face run folder: building the tagger from a model folder, saving it, loading it back with
every file checked against the SHA-256 training recorded, predicting word by word, and capturing a site's
word-level activations in the archive format of nerve's analysis (``nerve.analysis.capture``).

Folder: ``config.toml`` (``HFConfig``), ``vocab.json`` (the tags, in the head's order, and the scheme),
``encoder/`` (the encoder's config.json and tokenizer files: the run needs no other folder), ``model.pt`` (the
best dev epoch's weights), ``checkpoint.pt``, ``epochs.jsonl``, ``metrics.json``, ``identity.json``,
``complete.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import nerve
from nerve.errors import NerveError
from nerve.hf.config import HFConfig, is_hf_config, load_hf_config
from nerve.hf.model import CLASSIFIER_SITE, HFTagger, folder_labels, is_token_classifier, read_folder_config
from nerve.hf.words import Pieces, WordBatch, encode_words, read_words, word_batch
from nerve.io import atomic_save, atomic_write_json

CONFIG, VOCAB, MODEL, CHECKPOINT, EPOCHS, METRICS, ENCODER = (
    "config.toml", "vocab.json", "model.pt", "checkpoint.pt", "epochs.jsonl", "metrics.json", "encoder")


def is_hf_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a fine-tuned Hugging Face run (its config.toml is an ``HFConfig``)."""
    return (Path(run_dir) / CONFIG).is_file() and is_hf_config(Path(run_dir) / CONFIG)


def _drop_pooler(encoder):
    if getattr(encoder, "pooler", None) is not None:  # the sentence pooler: never read by a tagger
        encoder.pooler = None
    return encoder


def build_tagger(cfg: HFConfig, corpus_tags: list[str], encoder_dir: Path, vocab_path: Path):
    """The tagger to fine-tune from ``cfg.model.folder`` (an encoder, or a token classifier whose labels must be
    the corpus's tags) and its tokenizer; writes the encoder's config and tokenizer to ``encoder_dir`` and the
    tags to ``vocab_path``."""
    from nerve.hf import require

    require()
    from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer

    folder = cfg.model.folder
    config = read_folder_config(folder)
    classifier = None
    if is_token_classifier(config):
        tags = folder_labels(folder, config, corpus_tags)
        full = AutoModelForTokenClassification.from_pretrained(folder, local_files_only=True)
        encoder, classifier = full.base_model, full.classifier
    else:
        tags = list(corpus_tags)
        encoder = AutoModel.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = HFTagger(_drop_pooler(encoder), tags, cfg.model, cfg.data.scheme, classifier)
    encoder_dir.mkdir(parents=True, exist_ok=True)
    encoder.config.save_pretrained(encoder_dir)
    tokenizer.save_pretrained(encoder_dir)
    atomic_write_json(vocab_path, {"tags": tags, "scheme": cfg.data.scheme})
    return model, tokenizer


def save_tagger(path: Path, model: HFTagger) -> None:
    payload = {"format_version": nerve.FORMAT_VERSION, "nerve_version": nerve.__version__, "tags": model.tags,
               "state_dict": model.state_dict()}
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


def split_pieces(tokenizer, sents, path: str, model: HFTagger) -> list[Pieces]:
    """A split's sentences as sub-tokens, within the model's positions."""
    limit = int(getattr(model.encoder.config, "max_position_embeddings", 512))
    return encode_words(tokenizer, [s.words for s in sents], str(path), [s.line for s in sents], limit)


def predict_words(model: HFTagger, pieces: list[Pieces], pad_id: int, batch_size: int) -> list[np.ndarray]:
    """Each sentence's predicted tag ids (its words), in input order; sentences batched by length."""
    model.eval()
    device = next(model.parameters()).device
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(pieces)
    order = np.argsort([len(p.ids) for p in pieces], kind="stable")
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start: start + batch_size]
            pred = model.decode(word_batch([pieces[i] for i in idx], pad_id).to(device)).cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = pred[row, : len(pieces[i].first)]
    return out


@dataclass
class LoadedHFRun:
    """A fine-tuned Hugging Face run, ready to predict and capture (the counterpart of ``nerve.run.LoadedRun``)."""

    path: Path
    cfg: HFConfig
    model: HFTagger
    tokenizer: object
    device: torch.device
    hashes: dict[str, str]  # SHA-256 of the config, vocab and model bytes loaded

    @property
    def tags(self) -> list[str]:
        return self.model.tags

    def pieces(self, sents, path: str) -> list[Pieces]:
        return split_pieces(self.tokenizer, sents, path, self.model)

    def capture(self, sents, path: str, site: str = CLASSIFIER_SITE) -> tuple[dict, list]:
        """The archive of ``nerve.analysis.capture.capture_activations`` at ``site``, words read as the run's
        ``model.pooling`` says; W and b (the tag layer) come with ``classifier_in`` only (the one site whose
        downstream is linear)."""
        return capture_site(self, sents, path, site)


def load_hf_run(run_dir: str | os.PathLike, device: str | None = "cpu") -> LoadedHFRun:
    """Load a run folder written by ``nerve train MODEL_FOLDER``; its files must be those training recorded."""
    from nerve.folder import COMPLETE, read_marker, sha256_file
    from nerve.hf import require
    from nerve.run import pick_device, read_checkpoint_hashed

    require()
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    run = Path(run_dir)
    marker = read_marker(run, COMPLETE)
    if marker is None or not isinstance(marker.get("files"), dict):
        raise NerveError(f"{run}: not a finished run (no {COMPLETE}); finish it by re-running the same `nerve train`")
    recorded = marker["files"]
    hashes = {name: sha256_file(run / name) for name in (CONFIG, VOCAB)}
    payload, hashes[MODEL] = read_checkpoint_hashed(run / MODEL)
    present = {f"{ENCODER}/{p.name}" for p in (run / ENCODER).iterdir()} if (run / ENCODER).is_dir() else set()
    for name in [CONFIG, VOCAB, MODEL, *sorted(present | {f for f in recorded if f.startswith(f"{ENCODER}/")})]:
        actual = hashes.get(name) or (sha256_file(run / name) if (run / name).is_file() else None)
        if actual is None or recorded.get(name) != actual:
            raise NerveError(f"{run / name}: differs from the file training wrote (changed, removed or copied in "
                             "afterwards); re-train the run or restore the file")
    cfg = load_hf_config(run / CONFIG)
    vocab = json.loads((run / VOCAB).read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(str(run / ENCODER), local_files_only=True)
    encoder = _drop_pooler(AutoModel.from_config(config))
    model = HFTagger(encoder, vocab["tags"], cfg.model, vocab["scheme"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise NerveError(f"{run / MODEL}: weights do not fit the encoder described by {run / ENCODER}") from None
    dev = pick_device(device)
    model.to(dev).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run / ENCODER), local_files_only=True)
    return LoadedHFRun(run, cfg, model, tokenizer, dev, hashes)


def capture_site(run: LoadedHFRun, sents, path: str, site: str) -> tuple[dict, list]:
    """Run the model (eval mode) over ``sents``; ``site``'s word-level values (see ``LoadedHFRun.capture``)."""
    from nerve.model.hooks import capture

    model = run.model.eval()
    if site not in model.sites():
        raise NerveError(f"--site {site}: expected one of {', '.join(model.sites())}")
    keep = [i for i, s in enumerate(sents) if len(s.words)]
    if not keep:
        raise NerveError(f"{path}: no tokens to analyse")
    pieces = run.pieces([sents[i] for i in keep], path)
    tag_id = {t: i for i, t in enumerate(model.tags)}
    h_rows, preds = [None] * len(keep), [None] * len(keep)
    order = np.argsort([len(p.ids) for p in pieces], kind="stable")
    bs = run.cfg.train.eval_batch_size
    with torch.no_grad(), capture(model, site) as store:
        for start in range(0, len(order), bs):
            idx = order[start: start + bs]
            batch: WordBatch = word_batch([pieces[i] for i in idx], run.tokenizer.pad_token_id).to(run.device)
            store.clear()
            pred = model.decode(batch).cpu()
            h = store[0] if site == CLASSIFIER_SITE else read_words(store[0], batch, model.cfg.pooling)
            for row, i in enumerate(idx):
                L = len(pieces[i].first)
                h_rows[i], preds[i] = h[row, :L].cpu().numpy(), pred[row, :L].numpy()
    lengths = np.array([len(p.first) for p in pieces])
    try:
        gold = np.array([tag_id[t] for i in keep for t in sents[i].tags], dtype=np.int64)
    except KeyError as err:
        raise NerveError(f"{path}: tag {err.args[0]} is not one of the model's tags") from None
    arrays = {"h": np.concatenate(h_rows).astype(np.float32), "gold": gold,
              "pred": np.concatenate(preds).astype(np.int64), "tags": np.array(model.tags),
              "neurons": np.array([str(u) for u in range(model.site_units(site))]),
              "sentence_starts": np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
              "decoder": np.array("crf" if model.crf is not None else "softmax")}
    if site == CLASSIFIER_SITE:
        arrays["W"] = model.hidden2tag.weight.detach().cpu().numpy().astype(np.float32)
        arrays["b"] = model.hidden2tag.bias.detach().cpu().numpy().astype(np.float32)
        if model.crf is not None:
            start, trans, end = (t.detach().cpu().numpy().astype(np.float32)
                                 for t in model.crf.effective_transitions())
            arrays.update(crf_start=start, crf_transitions=trans, crf_end=end)
    return arrays, [sents[i].words for i in keep]
