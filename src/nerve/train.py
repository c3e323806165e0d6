"""Training: NCRF++ optimisation, best-on-dev model, per-epoch checkpoints that resume to the same numbers."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nerve.config import Config, from_dict
from nerve.data.batching import batches, feature_columns
from nerve.data.conll import normalize_number, read_conll
from nerve.data.schemes import check_and_convert
from nerve.data.vocab import Vocabs, build_vocabs
from nerve.embeddings import init_matrix
from nerve.errors import NerveError
from nerve.evaluate import score
from nerve.folder import (IDENTITY, clear_complete, differences, mark_complete, read_marker, write_identity,
                          writer_lock)
from nerve.io import atomic_save, atomic_write_json, atomic_write_text, gc_paused
from nerve.model.layers import RowSparseSGD, sparse_momentum_ok
from nerve.model.tagger import Tagger
from nerve.optim import SGD
from nerve.run import (CHECKPOINT, CONFIG, EPOCHS, METRICS, MODEL, VOCAB, encode_split, make_encoder, predict,
                       pretrained_for, read_checkpoint, run_identity, save_model)


def resolve_data(cfg: Config, data_dir: str | None) -> Config:
    """Make the data paths absolute: names inside ``data_dir`` or paths as given."""
    for split in ("train", "dev", "test"):
        name = getattr(cfg.data, split)
        path = Path(data_dir) / name if data_dir and not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            where = f" in {data_dir}" if data_dir else ""
            raise NerveError(f"data.{split}: {path} not found{where} (a corpus folder holds train.txt, valid.txt, test.txt)")
        setattr(cfg.data, split, str(path.resolve()))
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(cfg: Config, model: Tagger) -> torch.optim.Optimizer:
    """The configured optimiser. SGD updates the word embeddings row-sparsely (same arithmetic as dense SGD
    with L2 and momentum up to float rounding, much faster); they are then left out of this optimiser."""
    t = cfg.train
    sparse = (t.optimizer == "sgd" and cfg.embeddings.fine_tune
              and (t.momentum == 0 or sparse_momentum_ok(t.lr, t.l2, t.momentum)))
    if sparse:
        model.row_sparse = RowSparseSGD(model.word_emb, t.momentum)
    params = [p for p in model.parameters() if p.requires_grad and not (sparse and p is model.word_emb.weight)]
    if t.optimizer == "sgd":
        return SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.l2)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.l2)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.l2)


def epoch_lr(cfg: Config, epoch: int) -> float:
    """NCRF++ decay ``lr / (1 + decay * epoch)`` (epoch from 0) for SGD; constant otherwise."""
    if cfg.train.optimizer == "sgd":
        return cfg.train.lr / (1.0 + cfg.train.lr_decay * epoch)
    return cfg.train.lr


def _prepare(cfg: Config, out: Path, log):
    """Read the corpus, build or reload the vocabularies, encode every split."""
    with gc_paused():
        return _prepare_data(cfg, out, log)


def _prepare_data(cfg: Config, out: Path, log):
    t0 = time.perf_counter()
    sents = {s: read_conll(getattr(cfg.data, s)) for s in ("train", "dev", "test")}
    for split, ss in sents.items():
        path = getattr(cfg.data, split)
        if not ss:
            raise NerveError(f"{path}: no sentences (expected CoNLL column lines: word ... tag)")
        check_and_convert(ss, path, cfg.data.input_scheme, cfg.data.scheme, cfg.data.repair_bio)
    pre = pretrained_for(cfg)
    if pre is not None and pre.dim != cfg.embeddings.dim:
        raise NerveError(f"embeddings.dim = {cfg.embeddings.dim} but {pre.source} has {pre.dim}-dimensional vectors "
                         f"(set embeddings.dim = {pre.dim})")
    if (out / VOCAB).is_file():
        vocabs = Vocabs.from_dict(json.loads((out / VOCAB).read_text(encoding="utf-8")))
    else:
        norm = functools.cache(normalize_number) if cfg.data.number_normalized else str
        feats = [[feature_columns(s, cfg.data.features, True, cfg.data.train)[k] for s in sents["train"]]
                 for k in range(len(cfg.data.features))]
        vocabs = build_vocabs([[norm(w) for w in s.words] for s in sents["train"]],
                              [s.tags for s in sents["train"]], feats)
        atomic_write_json(out / VOCAB, vocabs.to_dict())
    train_enc = make_encoder(cfg, vocabs, pre)
    train_items = encode_split(train_enc, sents["train"], cfg.data.train, allow_extra=False)
    log(f"data: {len(sents['train'])} / {len(sents['dev'])} / {len(sents['test'])} sentences, "
        f"{len(vocabs.words)} words, {len(vocabs.tags)} tags ({time.perf_counter() - t0:.2f}s)")

    @functools.cache
    def evaluation(split: str):
        """(encoded sentences, extra vectors) of dev or test, encoded on first use so training starts sooner."""
        enc = make_encoder(cfg, vocabs, pre)
        with gc_paused():
            items = encode_split(enc, sents[split], getattr(cfg.data, split), gold_ids=False)
        return items, enc.extra_vectors()

    return sents, vocabs, pre, train_items, evaluation


def train(cfg: Config, out_dir: str | Path, device: torch.device | str = "cpu", progress: bool | None = None,
          log=None) -> dict:
    """Train (or resume) a run in ``out_dir``; returns the final metrics dict.

    The folder is locked for the whole run (one writer), records what produced it in identity.json before any
    other file, and gets complete.json (the run's fingerprint) only after metrics.json, as the last write.
    """
    out = Path(out_dir)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    with writer_lock(out, "nerve train"):
        try:
            return _train(cfg, out, device, progress, log)
        except NonFiniteLoss as err:
            raise NerveError(f"{out}: {err}") from None


class NonFiniteLoss(NerveError):
    """The training loss or the weights became NaN or infinite."""


RUN_FILES = (CONFIG, VOCAB, MODEL, METRICS, EPOCHS)


def _claim(out: Path, cfg: Config) -> dict:
    """Check that ``out`` is new or holds this run, then record the run's identity (before any other write).

    A folder with a checkpoint resumes only under the same identity (only train.epochs may grow); one whose
    first epoch never finished starts over, whatever it held.
    """
    ident = run_identity(cfg)
    old = read_marker(out, IDENTITY)
    started = (out / CHECKPOINT).is_file()
    if old is None and (started or any((out / f).exists() for f in RUN_FILES)):
        raise NerveError(f"{out}: holds files of another run but no {IDENTITY} (an older nerve or another "
                         "program wrote them); use another --out")
    if started:
        changed = resume_conflicts(old.get("components", {}), ident)
        if changed:
            raise NerveError(f"{out}: holds a run of another config or corpus ({'; '.join(changed[:4])}); use "
                             "another --out (or delete the folder); only train.epochs may grow between runs in "
                             "one folder")
    clear_complete(out)
    if not started:  # nothing of a finished epoch: start over
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    write_identity(out, ident)
    return ident


def resume_conflicts(old: dict, new: dict) -> list[str]:
    """What stops a run of identity ``old`` from resuming as identity ``new`` (``key: old -> new`` strings):
    any difference but a larger train.epochs."""
    was, now = copy.deepcopy(old), copy.deepcopy(new)
    e_was, e_now = (c.get("config", {}).get("train", {}).pop("epochs", None) for c in (was, now))
    changed = differences(was, now)
    if isinstance(e_was, int) and isinstance(e_now, int) and e_now < e_was:
        changed.append(f"config.train.epochs: {e_was} -> {e_now} (may only grow)")
    return changed


def _train(cfg: Config, out: Path, device, progress, log) -> dict:
    ident = _claim(out, cfg)
    ckpt = None
    if (out / CHECKPOINT).is_file():
        ckpt = read_checkpoint(out / CHECKPOINT)
        _check_resumable(out, from_dict(ckpt["config"]), cfg, log)
    cfg.save(out / CONFIG)
    seed_everything(cfg.train.seed)
    sents, vocabs, pre, train_items, evaluation = _prepare(cfg, out, log)
    rng = np.random.default_rng(cfg.train.seed)
    matrix, found = init_matrix(vocabs.words.itos, cfg.embeddings.dim, pre, rng,
                                normalize=cfg.embeddings.normalize)
    if pre is not None:
        log(f"embeddings: {found}/{len(vocabs.words) - 2} training words found in {pre.source}")
    model = Tagger(cfg, vocabs, cfg.embeddings.dim, matrix).to(device)
    drop_rng = np.random.default_rng([cfg.train.seed, 1])
    model.seed_dropout(drop_rng)
    opt = make_optimizer(cfg, model)
    history, best, start = [], {"f1": -1.0, "epoch": -1}, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        try:
            opt.load_state_dict(ckpt["optimizer"])
            if model.row_sparse is not None and model.row_sparse.momentum:
                model.row_sparse.load_state_dict(ckpt.get("row_sparse") or {})
        except (ValueError, KeyError):
            raise NerveError(f"{out / CHECKPOINT}: its optimiser state does not fit this version of nerve; "
                             "delete checkpoint.pt to train from scratch, or use another --out") from None
        history, best, start = ckpt["epochs"], ckpt["best"], ckpt["epoch"] + 1
        torch.set_rng_state(ckpt["torch_rng"])
        drop_rng.bit_generator.state = ckpt["dropout_rng"]
        if start < cfg.train.epochs:
            log(f"resuming from the checkpoint of epoch {start}")
    average = WeightAverage(ckpt.get("average") if ckpt is not None else None)
    with_chars = model.char is not None
    for epoch in range(start, cfg.train.epochs):
        lr = epoch_lr(cfg, epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, secs = _train_epoch(cfg, model, opt, train_items, epoch, device, with_chars, progress)
        _check_weights(model, epoch)
        t0 = time.perf_counter()
        record = {"epoch": epoch + 1, "lr": lr, "loss": loss, "train_seconds": round(secs, 3),
                  "sentences_per_second": round(len(train_items) / secs, 1)}
        averaging = 0 < cfg.train.average_from <= epoch + 1
        if averaging:
            average.add(model)
            record["averaged_epochs"] = average.n
        with average.swapped_in(model) if averaging else contextlib.nullcontext():
            for split in ("dev", "test"):
                pred = predict(model, *evaluation(split), cfg.train.eval_batch_size, device)
                record[split] = score([s.tags for s in sents[split]], _names(pred, vocabs), vocabs.tags.itos)
            if record["dev"]["f1"] > best["f1"]:
                best = {"f1": record["dev"]["f1"], "epoch": epoch + 1}
                save_model(out / MODEL, model, cfg.embeddings.dim)
        record["eval_seconds"] = round(time.perf_counter() - t0, 3)
        history.append(record)
        print(json.dumps(_brief(record)), flush=True)
        _save_checkpoint(out, cfg, model, opt, epoch, history, best, drop_rng, average)
    metrics = _finish(out, cfg, history, best)
    mark_complete(out, ident, [CONFIG, VOCAB, MODEL, METRICS], best_epoch=best["epoch"])
    return metrics


def _check_weights(model: Tagger, epoch: int) -> None:
    """Stop before evaluating or saving weights that hold NaN or inf."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise NonFiniteLoss(f"the weights {name} hold NaN or inf after epoch {epoch + 1}; {_stopped(epoch)}")


def _stopped(epoch: int) -> str:
    kept = f"the checkpoint of epoch {epoch} is kept" if epoch else "no epoch had finished, so no model was saved"
    return f"training stopped ({kept}); lower train.lr or check the inputs for NaN/inf"


class WeightAverage:
    """Running mean of the epoch-end weights (stochastic weight averaging, Izmailov et al. 2018)."""

    def __init__(self, state: dict | None = None):
        self.n = 0 if state is None else int(state["n"])
        self.mean: dict[str, torch.Tensor] | None = None if state is None else state["mean"]

    @torch.no_grad()
    def add(self, model: Tagger) -> None:
        weights = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
        self.n += 1
        if self.mean is None:
            self.mean = {k: v.detach().clone() for k, v in weights.items()}
            return
        for k, v in weights.items():
            self.mean[k].add_(v - self.mean[k], alpha=1.0 / self.n)

    @contextlib.contextmanager
    def swapped_in(self, model: Tagger):
        """Load the mean weights into ``model`` for the block, then restore the trained ones."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict({**own, **self.mean})
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict | None:
        return None if self.mean is None else {"n": self.n, "mean": self.mean}


def _check_resumable(out: Path, saved: Config, cfg: Config, log) -> None:
    """A checkpoint resumes under the same config, or one that only asks for more epochs: the learning-rate
    schedule, batch orders and dropout draws depend on the epoch index alone, so extending a run gives what a
    longer run from scratch gives."""
    more = copy.deepcopy(saved)
    more.train.epochs = cfg.train.epochs
    more.data.train, more.data.dev, more.data.test = cfg.data.train, cfg.data.dev, cfg.data.test  # by checksum
    if more != cfg or cfg.train.epochs < saved.train.epochs:
        raise NerveError(f"{out}: holds a run of a different config; use another --out (or delete the folder); "
                         "only train.epochs may grow between runs in one folder")
    if cfg.train.epochs > saved.train.epochs:
        log(f"extending the run from {saved.train.epochs} to {cfg.train.epochs} epochs")


def _names(pred: list[np.ndarray], vocabs) -> list[list[str]]:
    itos = vocabs.tags.itos
    return [[itos[i] for i in p] for p in pred]


def _brief(record: dict) -> dict:
    keep = ("f1", "precision", "recall", "accuracy")
    return {**{k: v for k, v in record.items() if k not in ("dev", "test")},
            **{f"{s}_{k}": round(record[s][k], 4) for s in ("dev", "test") for k in keep}}


# Test hook: NERVE_KILL_AT=E*1000000+S kills the process (SIGKILL) after step S of epoch E (from 0).
_KILL_AT = int(os.environ["NERVE_KILL_AT"]) if os.environ.get("NERVE_KILL_AT") else None


def epoch_order(cfg: Config, items, epoch: int) -> np.ndarray:
    """Sentence order of an epoch (seeded by seed and epoch). ``bucket`` batching sorts by length with random
    tie-breaks, cuts batches, and shuffles the batches; ``pool`` does the same within random pools of
    ``POOL_BATCHES`` batches (like torchtext's BucketIterator), so batches mix lengths less than ``random`` but
    more than ``bucket``."""
    rng = np.random.default_rng([cfg.train.seed, epoch])
    if cfg.train.batching == "random":
        return rng.permutation(len(items))
    lengths = np.array([len(e.words) for e in items])
    bs = cfg.train.batch_size
    if cfg.train.batching == "pool":
        perm, chunks = rng.permutation(len(items)), []
        for s in range(0, len(perm), POOL_BATCHES * bs):
            pool = perm[s: s + POOL_BATCHES * bs]
            pool = pool[np.argsort(lengths[pool], kind="stable")]
            chunks += [pool[i: i + bs] for i in range(0, len(pool), bs)]
    else:
        order = np.lexsort((rng.random(len(items)), lengths))
        chunks = [order[s: s + bs] for s in range(0, len(order), bs)]
    return np.concatenate([chunks[i] for i in rng.permutation(len(chunks))])


POOL_BATCHES = 50  # "pool" batching sorts by length within random pools of this many batches


def singleton_ids(items, n_words: int) -> np.ndarray:
    """Boolean mask over word ids, shape (n_words,): the words seen exactly once in the training sentences."""
    counts = np.bincount(np.concatenate([e.words for e in items]) if items else np.zeros(0, np.int64),
                         minlength=n_words)
    once = counts == 1
    once[:2] = False  # padding and <unk>
    return once


def drop_words(words: torch.Tensor, once: np.ndarray, p: float, rng: np.random.Generator) -> torch.Tensor:
    """Replace each singleton word id by <unk> (id 1) with chance ``p``; ``words`` shape (batch, max_len)."""
    ids = words.numpy()
    hit = once[ids] & (rng.random(ids.shape) < p)
    return torch.from_numpy(np.where(hit, 1, ids)) if hit.any() else words


def _train_epoch(cfg, model, opt, items, epoch, device, with_chars, progress) -> tuple[float, float]:
    model.train()
    order = epoch_order(cfg, items, epoch)
    p_drop = cfg.train.word_dropout
    once = singleton_ids(items, model.word_emb.num_embeddings) if p_drop > 0 else None
    word_rng = np.random.default_rng([cfg.train.seed, epoch, 2])
    total, n_done, t0 = 0.0, 0, time.perf_counter()
    params = [p for g in opt.param_groups for p in g["params"]]
    bar = tqdm(total=len(items), desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="sent", disable=progress is False
               if progress is not None else None, leave=False, file=sys.stderr)
    for step, (idx, batch) in enumerate(batches(items, cfg.train.batch_size, order, with_chars)):
        if once is not None:
            batch.words = drop_words(batch.words, once, p_drop, word_rng)
        loss = model.loss(batch.to(device))
        if cfg.train.ave_batch_loss:
            loss = loss / len(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.clip > 0:
            _clip(params, model.row_sparse, cfg.train.clip)
        opt.step()
        if model.row_sparse is not None:
            model.row_sparse.step(opt.param_groups[0]["lr"], cfg.train.l2)
        if _KILL_AT is not None and epoch * 10**6 + step >= _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)  # fault injection for the kill-and-resume test
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
    if model.row_sparse is not None:
        model.row_sparse.flush()
    bar.close()
    return total, time.perf_counter() - t0


def _clip(params, row_sparse, max_norm: float) -> None:
    """Clip the total gradient norm (embedding rows included) to ``max_norm``, like clip_grad_norm_."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = list(torch._foreach_norm(grads)) if grads else []
    if row_sparse is not None:
        norms.append(row_sparse.grad_norm_sq().sqrt())
    if not norms:
        return
    coef = max_norm / (float(torch.stack(norms).norm()) + 1e-6)
    if coef < 1.0:
        if grads:
            torch._foreach_mul_(grads, coef)
        if row_sparse is not None:
            row_sparse.scale_grad(coef)


def _save_checkpoint(out: Path, cfg, model, opt, epoch, history, best, drop_rng, average) -> None:
    import nerve

    payload = {"format_version": nerve.FORMAT_VERSION, "nerve_version": nerve.__version__, "config": cfg.to_dict(),
               "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
               "row_sparse": None if model.row_sparse is None else model.row_sparse.state_dict(),
               "average": average.state_dict(),
               "torch_rng": torch.get_rng_state(), "dropout_rng": drop_rng.bit_generator.state, "epochs": history, "best": best}
    atomic_save(out / CHECKPOINT, lambda tmp: torch.save(payload, tmp))
    write_progress(out, history, best, complete=False)


def write_progress(out: Path, history, best, complete: bool) -> dict:
    atomic_write_text(out / EPOCHS, "".join(json.dumps(r) + "\n" for r in history))
    b = history[best["epoch"] - 1] if best["epoch"] > 0 else {}
    metrics = {"complete": complete, "best_epoch": best["epoch"], "dev": b.get("dev"), "test": b.get("test"),
               "train_seconds": round(sum(r["train_seconds"] for r in history), 3), "epochs": history}
    atomic_write_json(out / METRICS, metrics)
    return metrics


def _finish(out: Path, cfg, history, best) -> dict:
    if not history:
        raise NerveError("train.epochs = 0: nothing to train")
    return write_progress(out, history, best, complete=True)
