"""From a config to training input: data paths resolved, the corpus read and checked, vocabularies built or
reloaded, splits encoded, and the seeded sentence order of every epoch."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nerve.config import Config
from nerve.data.batching import Encoded, Indexer, feature_columns
from nerve.data.conll import Sentence, normalize_number, read_conll
from nerve.data.schemes import check_and_convert, detect_scheme
from nerve.data.vocab import Vocabs, build_vocabs
from nerve.embeddings import load_pretrained
from nerve.errors import NerveError
from nerve.io import atomic_write_json, gc_paused

SPLITS = ("train", "dev", "test")
POOL_BATCHES = 50  # "pool" batching sorts by length within random pools of this many batches


def resolve_data(cfg: Config, data_dir: str | None) -> Config:
    """Make the data paths absolute: names inside ``data_dir`` or paths as given."""
    for split in SPLITS:
        name = getattr(cfg.data, split)
        path = Path(data_dir) / name if data_dir and not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            where = f" in {data_dir}" if data_dir else ""
            raise NerveError(f"data.{split}: {path} not found{where} "
                             "(a corpus folder holds train.txt, valid.txt, test.txt)")
        setattr(cfg.data, split, str(path.resolve()))
    if cfg.data.scheme.upper() == "AUTO":
        cfg.data.scheme = file_scheme(cfg.data.train, cfg.data.input_scheme)
    return cfg


def file_scheme(path: str, input_scheme: str = "AUTO") -> str:
    """The training scheme that keeps a file's tags as written: BIOES when they are BIOES, else BIO (IOB1 is
    trained as BIO)."""
    from nerve.data.conll import stream_lines

    if input_scheme.upper() != "AUTO":
        return "BIOES" if input_scheme.upper() == "BIOES" else "BIO"
    tags = {cols[-1] for _, _, cols in stream_lines(path) if len(cols) >= 2}
    return detect_scheme(tags)


def pretrained_for(cfg: Config):
    """The pretrained table named by the config, or None for random embeddings."""
    if cfg.embeddings.source == "random":
        return None
    return load_pretrained(cfg.embeddings.source, cfg.embeddings.lowercase_fallback)


def make_indexer(cfg: Config, vocabs: Vocabs, pretrained) -> Indexer:
    """An Indexer matching the model's inputs (characters only when the model reads them)."""
    return Indexer(vocabs, cfg.data.features, cfg.data.number_normalized, pretrained, chars=cfg.model.char != "none",
                   caps=cfg.model.cap_feature, normalize=cfg.embeddings.normalize)


def encode_split(enc: Indexer, sents: list[Sentence], path: str, allow_extra: bool = True,
                 gold_ids: bool = True) -> list[Encoded]:
    """Encode a labelled split; ``gold_ids`` False skips tag ids (gold tags the model never saw are then fine)."""
    return [enc.encode(s, labelled=gold_ids, allow_extra=allow_extra, path=path, tag_column=True) for s in sents]


@dataclass(frozen=True)
class Prepared:
    """The corpus of a run, ready for training: sentences per split, vocabularies, the pretrained table, the
    encoded training sentences and ``evaluation(split)`` -> (encoded sentences, extra vectors) of dev or test."""

    sents: dict[str, list[Sentence]]
    vocabs: Vocabs
    pretrained: object | None
    train_items: list[Encoded]
    evaluation: Callable[[str], tuple[list[Encoded], np.ndarray | None]]


def prepare(cfg: Config, vocab_path: Path, log: Callable[[str], None]) -> Prepared:
    """Read the corpus, build the vocabularies (or reload them from ``vocab_path``), encode every split."""
    with gc_paused():
        return _prepare(cfg, vocab_path, log)


def read_splits(data) -> dict[str, list[Sentence]]:
    """Every split of a ``DataConfig`` read, checked (non-empty) and converted to its training scheme."""
    sents = {s: read_conll(getattr(data, s)) for s in SPLITS}
    for split, ss in sents.items():
        path = getattr(data, split)
        if not ss:
            raise NerveError(f"{path}: no sentences (expected CoNLL column lines: word ... tag)")
        check_and_convert(ss, path, data.input_scheme, data.scheme, data.repair_bio)
    return sents


def _prepare(cfg: Config, vocab_path: Path, log) -> Prepared:
    t0 = time.perf_counter()
    sents = read_splits(cfg.data)
    pre = pretrained_for(cfg)
    if pre is not None and pre.dim != cfg.embeddings.dim:
        raise NerveError(f"embeddings.dim = {cfg.embeddings.dim} but {pre.source} has {pre.dim}-dimensional vectors "
                         f"(set embeddings.dim = {pre.dim})")
    if vocab_path.is_file():
        vocabs = Vocabs.from_dict(json.loads(vocab_path.read_text(encoding="utf-8")))
    else:
        norm = functools.cache(normalize_number) if cfg.data.number_normalized else str
        feats = [[feature_columns(s, cfg.data.features, True, cfg.data.train)[k] for s in sents["train"]]
                 for k in range(len(cfg.data.features))]
        vocabs = build_vocabs([[norm(w) for w in s.words] for s in sents["train"]],
                              [s.tags for s in sents["train"]], feats)
        atomic_write_json(vocab_path, vocabs.to_dict())
    train_enc = make_indexer(cfg, vocabs, pre)
    train_items = encode_split(train_enc, sents["train"], cfg.data.train, allow_extra=False)
    log(f"data: {len(sents['train'])} / {len(sents['dev'])} / {len(sents['test'])} sentences, "
        f"{len(vocabs.words)} words, {len(vocabs.tags)} tags ({time.perf_counter() - t0:.2f}s)")

    @functools.cache
    def evaluation(split: str):
        """(encoded sentences, extra vectors) of dev or test, encoded on first use so training starts sooner."""
        enc = make_indexer(cfg, vocabs, pre)
        with gc_paused():
            items = encode_split(enc, sents[split], getattr(cfg.data, split), gold_ids=False)
        return items, enc.extra_vectors()

    return Prepared(sents, vocabs, pre, train_items, evaluation)


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
