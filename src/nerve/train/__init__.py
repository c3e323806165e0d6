"""Training: NCRF++ optimisation, best-on-dev model, per-epoch checkpoints that resume to the same numbers; the
trainer reports through callbacks (each epoch's record, each batch), never through stdout."""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import nerve
from nerve.config import Config, from_dict
from nerve.data.batching import batches
from nerve.data.prepare import Prepared, drop_words, epoch_order, prepare, singleton_ids
from nerve.embeddings import init_matrix
from nerve.errors import NerveError
from nerve.evaluate import score
from nerve.folder import mark_complete, writer_lock
from nerve.io import atomic_save, atomic_write_json, atomic_write_text
from nerve.model.tagger import Tagger
from nerve.run import (
    CHECKPOINT,
    CONFIG,
    EPOCHS,
    METRICS,
    MODEL,
    VOCAB,
    check_resumable,
    claim_run_folder,
    predict,
    read_checkpoint,
    save_model,
)
from nerve.train.optim import Optimizer, WeightAverage, make_optimizer

EpochCallback = Callable[[dict], None]  # the epoch's record (as in epochs.jsonl), after its checkpoint is saved
BatchCallback = Callable[[int, int], None]  # (epoch from 0, step from 0), after the step


class NonFiniteLoss(NerveError):
    """The training loss or the weights became NaN or infinite."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_lr(cfg: Config, epoch: int) -> float:
    """NCRF++ decay ``lr / (1 + decay * epoch)`` (epoch from 0) for SGD; constant otherwise."""
    if cfg.train.optimizer == "sgd":
        return cfg.train.lr / (1.0 + cfg.train.lr_decay * epoch)
    return cfg.train.lr


def brief(record: dict) -> dict:
    """An epoch record with the dev and test scores flattened to four numbers each (the CLI's epoch line)."""
    keep = ("f1", "precision", "recall", "accuracy")
    return {**{k: v for k, v in record.items() if k not in ("dev", "test")},
            **{f"{s}_{k}": round(record[s][k], 4) for s in ("dev", "test") for k in keep}}


def train(cfg: Config, out_dir: str | Path, device: torch.device | str = "cpu", progress: bool | None = None,
          log: Callable[[str], None] | None = None, *, on_epoch: EpochCallback | None = None,
          on_batch: BatchCallback | None = None) -> dict:
    """Train (or resume) a run in ``out_dir``; returns the final metrics dict.

    The folder is locked for the whole run (one writer), records what produced it in identity.json before any
    other file, and gets complete.json (the run's fingerprint) only after metrics.json, as the last write.
    """
    out = Path(out_dir)
    with writer_lock(out, "nerve train"):
        trainer = Trainer(cfg, out, device, progress=progress, log=log, on_epoch=on_epoch, on_batch=on_batch)
        try:
            return trainer.run()
        except NonFiniteLoss as err:
            raise NerveError(f"{out}: {err}") from None


@dataclass
class TrainState:
    """What a checkpoint restores: the epochs done, the best dev epoch, and the running weight average."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"f1": -1.0, "epoch": -1})
    average: WeightAverage = field(default_factory=WeightAverage)

    @property
    def start(self) -> int:
        return len(self.history)


class Trainer:
    """One run's training in its (locked) folder: ``run()`` trains the missing epochs and returns the metrics."""

    def __init__(self, cfg: Config, out: Path, device: torch.device | str = "cpu", *, progress: bool | None = None,
                 log: Callable[[str], None] | None = None, on_epoch: EpochCallback | None = None,
                 on_batch: BatchCallback | None = None):
        self.cfg, self.out, self.device = cfg, out, device
        self.progress = progress
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.on_epoch, self.on_batch = on_epoch, on_batch

    def run(self) -> dict:
        cfg, out = self.cfg, self.out
        ident = claim_run_folder(out, cfg)
        ckpt = read_checkpoint(out / CHECKPOINT) if (out / CHECKPOINT).is_file() else None
        if ckpt is not None:
            check_resumable(out, from_dict(ckpt["config"]), cfg, self.log)
        cfg.save(out / CONFIG)
        seed_everything(cfg.train.seed)
        data = prepare(cfg, out / VOCAB, self.log)
        model, opt, drop_rng = self._build(data)
        state = self._restore(ckpt, model, opt, drop_rng) if ckpt is not None else TrainState()
        for epoch in range(state.start, cfg.train.epochs):
            record = self._epoch(epoch, data, model, opt, state)
            self._save_checkpoint(epoch, model, opt, drop_rng, state)
            if self.on_epoch is not None:
                self.on_epoch(record)
        if not state.history:
            raise NerveError("train.epochs = 0: nothing to train")
        metrics = write_progress(out, state.history, state.best, complete=True)
        mark_complete(out, ident, [CONFIG, VOCAB, MODEL, METRICS], best_epoch=state.best["epoch"])
        return metrics

    def _build(self, data: Prepared) -> tuple[Tagger, Optimizer, np.random.Generator]:
        cfg = self.cfg
        rng = np.random.default_rng(cfg.train.seed)
        matrix, found = init_matrix(data.vocabs.words.itos, cfg.embeddings.dim, data.pretrained, rng,
                                    normalize=cfg.embeddings.normalize)
        if data.pretrained is not None:
            self.log(f"embeddings: {found}/{len(data.vocabs.words) - 2} training words found in "
                     f"{data.pretrained.source}")
        model = Tagger(cfg, data.vocabs, cfg.embeddings.dim, matrix).to(self.device)
        drop_rng = np.random.default_rng([cfg.train.seed, 1])
        model.seed_dropout(drop_rng)
        return model, make_optimizer(cfg.train, model, cfg.embeddings.fine_tune), drop_rng

    def _restore(self, ckpt: dict, model: Tagger, opt: Optimizer, drop_rng: np.random.Generator) -> TrainState:
        model.load_state_dict(ckpt["model"])
        try:
            opt.load_state_dict(ckpt)
        except (ValueError, KeyError):
            raise NerveError(f"{self.out / CHECKPOINT}: its optimiser state does not fit this version of nerve; "
                             "delete checkpoint.pt to train from scratch, or use another --out") from None
        torch.set_rng_state(ckpt["torch_rng"])
        drop_rng.bit_generator.state = ckpt["dropout_rng"]
        state = TrainState(ckpt["epochs"], ckpt["best"], WeightAverage(ckpt.get("average")))
        if state.start < self.cfg.train.epochs:
            self.log(f"resuming from the checkpoint of epoch {state.start}")
        return state

    def _epoch(self, epoch: int, data: Prepared, model: Tagger, opt: Optimizer, state: TrainState) -> dict:
        """Train one epoch, evaluate on dev and test, keep the model if dev F1 improved; the epoch's record."""
        cfg = self.cfg
        lr = epoch_lr(cfg, epoch)
        opt.set_lr(lr)
        loss, secs = self.train_epoch(epoch, data, model, opt)
        _check_weights(model, epoch)
        t0 = time.perf_counter()
        record = {"epoch": epoch + 1, "lr": lr, "loss": loss, "train_seconds": round(secs, 3),
                  "sentences_per_second": round(len(data.train_items) / secs, 1)}
        averaging = 0 < cfg.train.average_from <= epoch + 1
        if averaging:
            state.average.add(model)
            record["averaged_epochs"] = state.average.n
        itos = data.vocabs.tags.itos
        with state.average.swapped_in(model) if averaging else contextlib.nullcontext():
            for split in ("dev", "test"):
                pred = predict(model, *data.evaluation(split), cfg.train.eval_batch_size, self.device)
                record[split] = score([s.tags for s in data.sents[split]], [[itos[i] for i in p] for p in pred], itos)
            if record["dev"]["f1"] > state.best["f1"]:
                state.best = {"f1": record["dev"]["f1"], "epoch": epoch + 1}
                save_model(self.out / MODEL, model, cfg.embeddings.dim)
        record["eval_seconds"] = round(time.perf_counter() - t0, 3)
        state.history.append(record)
        return record

    def train_epoch(self, epoch: int, data: Prepared, model: Tagger, opt: Optimizer) -> tuple[float, float]:
        """One pass over the training sentences in the epoch's seeded order; (summed loss, seconds)."""
        cfg, items = self.cfg, data.train_items
        model.train()
        order = epoch_order(cfg, items, epoch)
        p_drop = cfg.train.word_dropout
        once = singleton_ids(items, model.word_emb.num_embeddings) if p_drop > 0 else None
        word_rng = np.random.default_rng([cfg.train.seed, epoch, 2])
        total, n_done, t0 = 0.0, 0, time.perf_counter()
        bar = tqdm(total=len(items), desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="sent", leave=False,
                   disable=self.progress is False if self.progress is not None else None, file=sys.stderr)
        for step, (idx, batch) in enumerate(batches(items, cfg.train.batch_size, order, model.char is not None)):
            if once is not None:
                batch.words = drop_words(batch.words, once, p_drop, word_rng)
            loss = model.loss(batch.to(self.device), word_lookup=opt.word_lookup)
            if cfg.train.ave_batch_loss:
                loss = loss / len(idx)
            opt.zero_grad()
            loss.backward()
            if cfg.train.clip > 0:
                opt.clip(cfg.train.clip)
            opt.step(cfg.train.l2)
            if self.on_batch is not None:
                self.on_batch(epoch, step)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(f"the training loss is {value} at epoch {epoch + 1}, batch {step + 1}; "
                                    f"{_stopped(epoch)}")
            total += value
            n_done += len(idx)
            bar.update(len(idx))
            if step % 50 == 0:
                bar.set_postfix(loss=f"{total / max(n_done, 1):.3f}",
                                speed=f"{n_done / (time.perf_counter() - t0):.0f}/s")
        opt.flush()
        bar.close()
        return total, time.perf_counter() - t0

    def _save_checkpoint(self, epoch: int, model: Tagger, opt: Optimizer, drop_rng: np.random.Generator,
                         state: TrainState) -> None:
        payload = {"format_version": nerve.FORMAT_VERSION, "nerve_version": nerve.__version__,
                   "config": self.cfg.to_dict(), "epoch": epoch, "model": model.state_dict(), **opt.state_dict(),
                   "average": state.average.state_dict(), "torch_rng": torch.get_rng_state(),
                   "dropout_rng": drop_rng.bit_generator.state, "epochs": state.history, "best": state.best}
        atomic_save(self.out / CHECKPOINT, lambda buf: torch.save(payload, buf))
        write_progress(self.out, state.history, state.best, complete=False)


def _check_weights(model: Tagger, epoch: int) -> None:
    """Stop before evaluating or saving weights that hold NaN or inf."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise NonFiniteLoss(f"the weights {name} hold NaN or inf after epoch {epoch + 1}; {_stopped(epoch)}")


def _stopped(epoch: int) -> str:
    kept = f"the checkpoint of epoch {epoch} is kept" if epoch else "no epoch had finished, so no model was saved"
    return f"training stopped ({kept}); lower train.lr or check the inputs for NaN/inf"


def write_progress(out: Path, history: list[dict], best: dict, complete: bool) -> dict:
    """Write epochs.jsonl and metrics.json (the best dev epoch's scores, every epoch's record)."""
    atomic_write_text(out / EPOCHS, "".join(json.dumps(r) + "\n" for r in history))
    b = history[best["epoch"] - 1] if best["epoch"] > 0 else {}
    metrics = {"complete": complete, "best_epoch": best["epoch"], "dev": b.get("dev"), "test": b.get("test"),
               "train_seconds": round(sum(r["train_seconds"] for r in history), 3), "epochs": history}
    atomic_write_json(out / METRICS, metrics)
    return metrics
