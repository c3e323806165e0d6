"""Fine-tuning a Hugging Face encoder or token classifier on a CoNLL corpus into a run folder: the run's identity
first, a checkpoint after every epoch (a killed run resumes to the same numbers), the best dev epoch's model, its
conlleval-exact word-level scores, and the completion marker last (``nerve.folder``)."""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import nerve
from nerve.data.prepare import SPLITS, file_scheme, read_splits
from nerve.errors import NerveError
from nerve.evaluate import score
from nerve.folder import (
    COMPLETE,
    IDENTITY,
    changed_files,
    clear_complete,
    differences,
    mark_complete,
    read_marker,
    write_identity,
    writer_lock,
)
from nerve.hf.config import HFConfig
from nerve.hf.model import folder_weights
from nerve.hf.run import (
    CHECKPOINT,
    CONFIG,
    ENCODER,
    EPOCHS,
    METRICS,
    MODEL,
    VOCAB,
    build_tagger,
    predict_words,
    save_tagger,
    split_pieces,
)
from nerve.hf.words import word_batch
from nerve.io import atomic_save
from nerve.train import write_progress

RUN_FILES = (CONFIG, VOCAB, MODEL, METRICS, EPOCHS, CHECKPOINT)


def hf_identity(cfg: HFConfig) -> dict:
    """What produced the run: the config without paths, the SHA-256 of the corpus files and of the model's weights."""
    from nerve.folder import sha256_file

    config = cfg.to_dict()
    data = {split: sha256_file(config["data"].pop(split)) for split in SPLITS}
    weights = folder_weights(config["model"].pop("folder"))
    return {"kind": "hf-run", "config": config, "data": data, "weights": weights, "nerve": nerve.__version__,
            "format": nerve.FORMAT_VERSION}


def _claim(out: Path, cfg: HFConfig) -> dict:
    ident = hf_identity(cfg)
    old, done = read_marker(out, IDENTITY), read_marker(out, COMPLETE)
    started = (out / CHECKPOINT).is_file()
    if old is None and (started or done is not None or any((out / f).exists() for f in RUN_FILES)):
        raise NerveError(f"{out}: holds files of another run but no readable {IDENTITY}; use another --out")
    if done is not None and changed_files(out, done):
        raise NerveError(f"{out}: {', '.join(changed_files(out, done))} changed since training finished; delete the "
                         "folder or use another --out")
    if (started or done is not None) and old is not None:
        changed = differences(old.get("components", {}), ident)
        if changed:
            raise NerveError(f"{out}: holds a run of another config, corpus or model ({'; '.join(changed[:4])}); use "
                             "another --out (a fine-tuning run resumes only under the same config: its learning-rate "
                             "schedule spans all epochs)")
    clear_complete(out)
    if not started:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    write_identity(out, ident)
    return ident


def corpus_tags(train_sents) -> list[str]:
    """The training split's tags in nerve's order (``nerve.tags.sort_key``, as its taggers' vocabularies)."""
    from nerve.tags import sort_key

    return sorted({t for s in train_sents for t in s.tags}, key=sort_key)


def fine_tune(cfg: HFConfig, out_dir: str | Path, log: Callable[[str], None] | None = None,
              on_epoch: Callable[[dict], None] | None = None, device: str = "cpu") -> dict:
    """Fine-tune (or resume) in ``out_dir`` on ``device``; the final metrics (best dev epoch's dev and test
    scores)."""
    out = Path(out_dir)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if cfg.data.scheme.upper() == "AUTO":
        cfg.data.scheme = file_scheme(cfg.data.train, cfg.data.input_scheme)
    with writer_lock(out, "nerve train"):
        ident = _claim(out, cfg)
        cfg.save(out / CONFIG)
        sents = read_splits(cfg.data)
        torch.manual_seed(cfg.train.seed)
        model, tokenizer = build_tagger(cfg, corpus_tags(sents["train"]), out / ENCODER, out / VOCAB)
        model.to(device)
        tags = model.tags
        pieces = {s: split_pieces(tokenizer, sents[s], getattr(cfg.data, s), model) for s in SPLITS}
        gold = [np.array([tags.index(t) for t in s.tags], dtype=np.int64) for s in sents["train"]]
        per_epoch = math.ceil(len(gold) / cfg.train.batch_size)
        opt, sched = _optimiser(model, cfg, per_epoch * cfg.train.epochs)
        history, best = [], {"f1": -1.0, "epoch": -1}
        if (out / CHECKPOINT).is_file():
            ck = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            torch.set_rng_state(ck["torch_rng"].cpu())
            history, best = ck["epochs"], ck["best"]
            log(f"resuming from the checkpoint of epoch {len(history)}")
        for epoch in range(len(history), cfg.train.epochs):
            record = _epoch(epoch, cfg, model, tokenizer, (pieces, gold, sents), opt, sched)
            if record["dev"]["f1"] > best["f1"]:
                best = {"f1": record["dev"]["f1"], "epoch": epoch + 1}
                save_tagger(out / MODEL, model)
            history.append(record)
            payload = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "torch_rng": torch.get_rng_state(), "epochs": history, "best": best}
            atomic_save(out / CHECKPOINT, functools.partial(_save, payload))
            metrics = write_progress(out, history, best, complete=False)
            if on_epoch is not None:
                on_epoch(record)
        metrics = write_progress(out, history, best, complete=True)
        mark_complete(out, ident, [CONFIG, VOCAB, MODEL, METRICS, *sorted(
            f"{ENCODER}/{p.name}" for p in (out / ENCODER).iterdir())], best_epoch=best["epoch"])
    return metrics


def _save(payload: dict, buf) -> None:
    torch.save(payload, buf)


def _optimiser(model, cfg: HFConfig, total: int):
    """AdamW: the encoder at ``lr``, the tag layer and CRF at ``head_lr``; no decay on biases and LayerNorm;
    linear warm-up over ``warmup`` of the steps, then linear decay to 0."""
    groups = {"decay": [], "plain": [], "head": []}
    for name, p in model.named_parameters():
        if not name.startswith("encoder."):
            groups["head"].append(p)
        else:
            groups["plain" if p.ndim < 2 or "LayerNorm" in name else "decay"].append(p)
    t = cfg.train
    opt = torch.optim.AdamW([{"params": groups["decay"], "lr": t.lr, "weight_decay": t.weight_decay},
                             {"params": groups["plain"], "lr": t.lr, "weight_decay": 0.0},
                             {"params": groups["head"], "lr": t.head_lr, "weight_decay": 0.0}])
    warm = max(1, int(t.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm))))
    return opt, sched


def _epoch(epoch: int, cfg: HFConfig, model, tokenizer, data, opt, sched) -> dict:
    pieces, gold, sents = data
    model.train()
    order = np.random.default_rng([cfg.train.seed, epoch]).permutation(len(gold))
    total, t0, bs = 0.0, time.perf_counter(), cfg.train.batch_size
    bar = tqdm(total=len(order), desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="sent", leave=False,
               file=sys.stderr, mininterval=10.0, disable=None)
    for step, start in enumerate(range(0, len(order), bs)):
        idx = order[start: start + bs]
        batch = word_batch([pieces["train"][i] for i in idx], tokenizer.pad_token_id, [gold[i] for i in idx])
        batch = batch.to(next(model.parameters()).device)
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        if cfg.train.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip)
        opt.step()
        sched.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NerveError(f"the training loss is {value} at epoch {epoch + 1}, batch {step + 1}; lower train.lr")
        total += value * len(idx)
        bar.update(len(idx))
    bar.close()
    secs = time.perf_counter() - t0
    record = {"epoch": epoch + 1, "loss": total / len(order), "train_seconds": round(secs, 3),
              "sentences_per_second": round(len(order) / secs, 1)}
    t1 = time.perf_counter()
    for split in ("dev", "test"):
        pred = predict_words(model, pieces[split], tokenizer.pad_token_id, cfg.train.eval_batch_size)
        record[split] = score([s.tags for s in sents[split]], [[model.tags[i] for i in p] for p in pred], model.tags)
    record["eval_seconds"] = round(time.perf_counter() - t1, 3)
    return record
