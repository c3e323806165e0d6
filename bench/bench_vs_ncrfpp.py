"""Training speed against NCRF++ (Yang & Zhang 2018), side by side on one pinned core, with the same batching: NCRF++'s
random batches (a fresh shuffle each epoch, batch 10 for xin2019) and nerve's ``train.batching = random``.

Run:  taskset -c 0 python bench/bench_vs_ncrfpp.py NCRFPP_DIR [--model xin2019|cnn_lstm_crf] [--epochs 2] [--pairs 2]
NCRFPP_DIR is a checkout of https://github.com/jiesutd/NCRFpp (its main.py; nothing of it is installed or imported
here: it runs in a subprocess with one torch thread). Both train on the same CoNLL-2003 sentences in the model's tag
scheme and the same GloVe 6B 50d vectors (written for NCRF++ as a text file of the corpus' words). The models:
xin2019 = word LSTM 50, no char, softmax, batch 10, SGD lr 0.015 (the preset); cnn_lstm_crf = char CNN 50 + BiLSTM
200 + CRF, BIOES, batch 10 with NCRF++'s summed loss (the grid's char-CNN cell on NCRF++'s own recipe).
Each pair runs NCRF++ then nerve for ``--epochs`` epochs; the time of an epoch is the training loop alone (NCRF++'s
"training finished. Time:" line, nerve's ``Trainer.train_epoch``), evaluation and start-up excluded. Prints the
machine, every epoch's seconds, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from machine import cpu_name  # bench/machine.py: the scripts run as python bench/X.py

MODELS = {  # nerve preset and settings, NCRF++ config lines
    "xin2019": ("xin2019", [], {"use_char": "False", "use_crf": "False", "bilstm": "False", "hidden_dim": "50",
                                "ave_batch_loss": "False"}),
    "cnn_lstm_crf": ("ncrfpp_grid", ["model.char=cnn", "model.encoder=lstm", "model.decoder=crf",
                                     "train.batch_size=10", "train.batching=random", "train.ave_batch_loss=false",
                                     "train.lr=0.015", "train.clip=0"],
                     {"use_char": "True", "char_seq_feature": "CNN", "use_crf": "True", "bilstm": "True",
                      "hidden_dim": "200", "ave_batch_loss": "False"}),
}
EPOCH_LINE = re.compile(r"Epoch: (\d+) training finished\. Time: ([0-9.]+)s")


def nerve_config(model: str, data: str):
    from nerve.config import load_config
    from nerve.config.presets import resolve_config
    from nerve.data.prepare import resolve_data

    preset, settings, _ = MODELS[model]
    return resolve_data(load_config(resolve_config(preset), settings), data)


def write_ncrfpp_inputs(cfg, folder: Path, model: str, epochs: int) -> tuple[Path, int]:
    """The corpus in two columns (word, tag in the model's scheme), the GloVe vectors of its words, and the config;
    returns the config's path and the number of training sentences."""
    from nerve.data.prepare import read_splits
    from nerve.embeddings import load_pretrained

    sents = read_splits(cfg.data)
    words = set()
    for split, name in (("train", "train"), ("dev", "dev"), ("test", "test")):
        with open(folder / f"{name}.txt", "w", encoding="utf-8") as f:
            for s in sents[split]:
                f.writelines(f"{w} {t}\n" for w, t in zip(s.words, s.tags))
                f.write("\n")
                words.update(s.words)
    table = load_pretrained(cfg.embeddings.source)
    index = table.index
    with open(folder / "emb.txt", "w", encoding="utf-8") as f:
        for w in sorted({v for word in words for v in (word, word.lower())}):
            i = index.get(w)
            if i is not None:
                f.write(w + " " + " ".join(f"{x:.6f}" for x in np.asarray(table.vectors[i])) + "\n")
    t = cfg.train
    lines = {"train_dir": folder / "train.txt", "dev_dir": folder / "dev.txt", "test_dir": folder / "test.txt",
             "model_dir": folder / "model", "word_emb_dir": folder / "emb.txt", "norm_word_emb": "False",
             "norm_char_emb": "False", "number_normalized": "True", "seg": "True", "word_emb_dim": "50",
             "char_emb_dim": "30", "word_seq_feature": "LSTM", "status": "train", "optimizer": "SGD",
             "iteration": str(epochs), "batch_size": str(t.batch_size), "cnn_layer": "4", "char_hidden_dim": "50",
             "dropout": str(cfg.model.dropout), "lstm_layer": "1", "learning_rate": str(t.lr),
             "lr_decay": str(t.lr_decay), "momentum": str(t.momentum), "l2": str(t.l2), **MODELS[model][2]}
    path = folder / "train.config"
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8")
    return path, len(sents["train"])


def ncrfpp_epochs(ncrfpp: Path, config: Path) -> list[float]:
    """NCRF++'s training seconds per epoch (a subprocess on this process' cores, one thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "main.py", "--config", str(config)], cwd=ncrfpp, env=env,
                         capture_output=True, text=True)
    times = [float(m.group(2)) for m in EPOCH_LINE.finditer(res.stdout)]
    if res.returncode != 0 or not times:
        raise SystemExit(f"NCRF++ failed ({res.returncode}): {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    return times


def nerve_epochs(model: str, data: str, epochs: int) -> list[float]:
    """nerve's training seconds per epoch (a subprocess, one thread), its data prepared before the clock starts."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_vs_ncrfpp as b; "
            f"print('EPOCHS', *b.nerve_epochs_here({model!r}, {data!r}, {epochs}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("EPOCHS")]
    if res.returncode != 0 or not line:
        raise SystemExit(f"nerve failed ({res.returncode}): {res.stderr.strip().splitlines()[-1:]}")
    return [float(x) for x in line[0].split()[1:]]


def nerve_epochs_here(model: str, data: str, epochs: int) -> list[float]:
    from bench_speed import epoch_seconds  # bench/bench_speed.py (one torch thread)

    from nerve.data.prepare import prepare

    cfg = nerve_config(model, data)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = prepare(cfg, Path(tmp) / "vocab.json", lambda m: None)
    return epoch_seconds(cfg, prepared, epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ncrfpp", type=Path)
    ap.add_argument("--model", choices=sorted(MODELS), default="xin2019")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=2)
    args = ap.parse_args()
    if not (args.ncrfpp / "main.py").is_file():
        raise SystemExit(f"{args.ncrfpp}: expected a checkout of NCRF++ (its main.py)")
    print(f"machine: {cpu_name()}; cores allowed: {sorted(os.sched_getaffinity(0))}; python {sys.version.split()[0]}")
    cfg = nerve_config(args.model, args.data)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        config, n = write_ncrfpp_inputs(cfg, Path(tmp), args.model, args.epochs)
        for p in range(args.pairs):
            a = ncrfpp_epochs(args.ncrfpp, config)
            b = nerve_epochs(args.model, args.data, args.epochs)
            theirs += a
            ours += b
            print(f"pair {p + 1}: NCRF++ {', '.join(f'{x:.1f}' for x in a)} s an epoch; nerve "
                  f"{', '.join(f'{x:.2f}' for x in b)} s", flush=True)
    mt, mo = statistics.median(theirs), statistics.median(ours)
    print(f"{args.model}: NCRF++ median {mt:.2f} s an epoch ({n / mt:,.0f} sentences/s), nerve {mo:.2f} s "
          f"({n / mo:,.0f} sentences/s): nerve {mt / mo:.2f}x NCRF++ ({len(theirs)} epochs each)")


if __name__ == "__main__":
    main()
