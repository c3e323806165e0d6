"""Fine-tuning throughput of nerve.hf against a plain transformers training loop (AutoModelForTokenClassification,
labels on first sub-tokens, -100 elsewhere, AdamW) on the same model and the same batches, side by side in one run
(alternating blocks of steps), then the capture time of every site on the dev split (issue 34).

Run:  taskset -c 0 python bench/bench_hf.py MODEL_FOLDER [--data ../shared/data/conll2003] [--steps 20] [--rounds 3]
      [--sha256 HEX]  (MiniLM-L6: 53aa5117…; the folder's model.safetensors is checked against it)
Prints the machine, sentences per second of each loop per round and their ratio, and seconds per site.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from machine import cpu_name  # noqa: E402

from nerve.data.conll import read_conll  # noqa: E402
from nerve.data.schemes import check_and_convert  # noqa: E402
from nerve.hf.config import hf_config  # noqa: E402
from nerve.hf.run import build_tagger  # noqa: E402
from nerve.hf.train import _optimiser, corpus_tags  # noqa: E402
from nerve.hf.words import word_batch  # noqa: E402


def plain_batches(tokenizer, sents, tags, order, bs):
    """The plain loop's batches: the tokenizer's own padding, labels at first sub-tokens (-100 elsewhere)."""
    for start in range(0, len(order), bs):
        chunk = [sents[i] for i in order[start: start + bs]]
        enc = tokenizer([s.words for s in chunk], is_split_into_words=True, padding=True, return_tensors="pt")
        labels = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
        for r, s in enumerate(chunk):
            prev = None
            for pos, w in enumerate(enc.word_ids(r)):
                if w is not None and w != prev:
                    labels[r, pos] = tags.index(s.tags[w])
                prev = w
        yield enc, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--data", default="../shared/data/conll2003")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sha256", default=None)
    args = ap.parse_args()
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    if args.sha256:
        digest = hashlib.sha256((Path(args.model) / "model.safetensors").read_bytes()).hexdigest()
        print(f"model.safetensors SHA-256 {digest}: {'verified' if digest == args.sha256 else 'MISMATCH'}")
        if digest != args.sha256:
            raise SystemExit(1)
    print(f"machine: {cpu_name()}, torch {torch.__version__}, 1 thread")
    train = read_conll(Path(args.data) / "train.txt")
    check_and_convert(train, "train", "auto", "BIO", False)
    tags = corpus_tags(train)
    cfg = hf_config(args.model, [f"train.batch_size={args.batch_size}"])
    tmp = Path("/tmp/bench_hf")
    torch.manual_seed(0)
    ours, tok = build_tagger(cfg, tags, tmp / "encoder", tmp / "vocab.json")
    from nerve.hf.words import encode_words

    pieces = encode_words(tok, [s.words for s in train], "train", [s.line for s in train], 512)
    gold = [np.array([tags.index(t) for t in s.tags]) for s in train]
    plain = AutoModelForTokenClassification.from_pretrained(args.model, num_labels=len(tags), local_files_only=True)
    total = args.steps * args.rounds
    opt_ours, sched_ours = _optimiser(ours, cfg, total)
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    order = np.random.default_rng(0).permutation(len(train))
    bs = args.batch_size
    ours.train()
    plain.train()
    results = {"nerve": [], "plain": []}
    for r in range(args.rounds):
        span = order[r * args.steps * bs: (r + 1) * args.steps * bs]
        t = time.perf_counter()
        for start in range(0, len(span), bs):
            idx = span[start: start + bs]
            batch = word_batch([pieces[i] for i in idx], tok.pad_token_id, [gold[i] for i in idx])
            loss = ours.loss(batch)
            opt_ours.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ours.parameters(), 1.0)
            opt_ours.step()
            sched_ours.step()
        results["nerve"].append(len(span) / (time.perf_counter() - t))
        t = time.perf_counter()
        for enc, labels in plain_batches(tok, train, tags, span, bs):
            loss = plain(**enc, labels=labels).loss
            opt_plain.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
            opt_plain.step()
        results["plain"].append(len(span) / (time.perf_counter() - t))
        print(f"round {r + 1}: nerve {results['nerve'][-1]:.1f} sent/s, plain transformers "
              f"{results['plain'][-1]:.1f} sent/s, ratio {results['nerve'][-1] / results['plain'][-1]:.2f}")
    med = {k: float(np.median(v)) for k, v in results.items()}
    print(f"median over {args.rounds} rounds of {args.steps} steps of {bs} sentences: nerve {med['nerve']:.1f}, "
          f"plain {med['plain']:.1f} sent/s, ratio {med['nerve'] / med['plain']:.2f}")
    dev = read_conll(Path(args.data) / "valid.txt")
    check_and_convert(dev, "dev", "auto", "BIO", False)
    from nerve.hf.run import LoadedHFRun

    loaded = LoadedHFRun(tmp, cfg, ours.eval(), tok, torch.device("cpu"), {})
    for site in ours.sites():
        t = time.perf_counter()
        arrays, _ = loaded.capture(dev, "dev", site)
        print(f"capture {site:14s} on dev ({arrays['h'].shape[0]:,} words x {arrays['h'].shape[1]} units): "
              f"{time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
