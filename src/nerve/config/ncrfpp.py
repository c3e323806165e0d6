"""Read NCRF++ `.config` files (key=value lines) into a nerve Config."""

from __future__ import annotations

import difflib
from pathlib import Path

from nerve.config import Config, set_value, validate
from nerve.errors import NerveError
from nerve.text import text_lines

# NCRF++ key -> nerve "section.key" (value converters below handle the special ones).
_DIRECT = {
    "train_dir": "data.train",
    "dev_dir": "data.dev",
    "test_dir": "data.test",
    "number_normalized": "data.number_normalized",
    "word_emb_dim": "embeddings.dim",
    "char_emb_dim": "model.char_emb_dim",
    "char_hidden_dim": "model.char_hidden",
    "hidden_dim": "model.hidden",
    "dropout": "model.dropout",
    "bilstm": "model.bidirectional",
    "nbest": "train.nbest",
    "iteration": "train.epochs",
    "batch_size": "train.batch_size",
    "ave_batch_loss": "train.ave_batch_loss",
    "learning_rate": "train.lr",
    "lr_decay": "train.lr_decay",
    "momentum": "train.momentum",
    "l2": "train.l2",
    "clip": "train.clip",
    "norm_word_emb": "embeddings.normalize",
}
_SPECIAL = {"word_emb_dir", "use_crf", "use_char", "word_seq_feature", "char_seq_feature", "feature", "optimizer",
            "cnn_layer", "lstm_layer", "model_dir", "seg", "gpu"}
# Keys NCRF++ knows that do not change training here (decoding paths, normalisation switches, ...).
_IGNORED = {"status", "raw_dir", "decode_dir", "dset_dir", "load_model_dir", "norm_char_emb",
            "char_emb_dir", "MAX_SENTENCE_LENGTH", "MAX_WORD_LENGTH", "sentence_classification"}


def _bool(value: str, where: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise NerveError(f"{where}: expected True or False, got {value!r}")


def read_ncrfpp_config(path: str | Path) -> Config:
    """Parse an NCRF++ config (``key=value`` per line, ``#`` comments, ``feature=[POS] emb_size=20``)."""
    path = Path(path)
    cfg = Config()
    cfg.train.clip = 0.0
    use_char, char_kind, layers = False, "cnn", {}
    text = path.read_bytes().decode("utf-8", errors="replace")  # no universal newlines: a lone \r is refused
    for lineno, raw in enumerate(text_lines(path, text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{lineno}"
        if "=" not in line:
            raise NerveError(f"{where}: expected key=value, got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if key in _DIRECT:
            if key == "clip" and value.lower() in ("none", ""):
                continue
            set_value(cfg, _DIRECT[key], value, source=where)
        elif key == "word_emb_dir":
            cfg.embeddings.source = value if value and value.lower() != "none" else "random"
        elif key == "use_crf":
            cfg.model.decoder = "crf" if _bool(value, where) else "softmax"
        elif key == "use_char":
            use_char = _bool(value, where)
        elif key == "char_seq_feature":
            char_kind = value.lower()
        elif key == "word_seq_feature":
            cfg.model.encoder = value.lower()
        elif key == "optimizer":
            cfg.train.optimizer = value.lower()
            if cfg.train.optimizer not in ("sgd", "adam", "adamw"):
                raise NerveError(f"{where}: optimizer {value!r} is not supported; expected SGD, Adam or AdamW")
        elif key in ("cnn_layer", "lstm_layer"):
            if not (value.strip().isascii() and value.strip().isdigit()) or int(value) < 1:
                raise NerveError(f"{where}: {key}: expected a whole number >= 1, got {value!r}")
            layers[key] = int(value)
        elif key == "feature":
            _feature(cfg, value, where)
        elif key == "model_dir":
            cfg.ncrfpp_model_dir = value  # type: ignore[attr-defined]
        elif key in _IGNORED or key in ("seg", "gpu"):
            continue
        else:
            known = sorted(set(_DIRECT) | _SPECIAL | _IGNORED)
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise NerveError(f"{where}: unknown NCRF++ key '{key}'{hint}")
    cfg.model.char = char_kind if use_char else "none"
    key = "cnn_layer" if cfg.model.encoder == "cnn" else "lstm_layer"
    if key in layers:
        cfg.model.layers = layers[key]
    return validate(cfg, str(path))


def _feature(cfg: Config, value: str, where: str) -> None:
    parts = value.split()
    name = parts[0] if parts else ""
    if not (len(name) > 2 and name.startswith("[") and name.endswith("]")):
        raise NerveError(f"{where}: expected feature=[NAME] emb_size=N, got {value!r}")
    cfg.data.features.append(name)
    for part in parts[1:]:
        if part.startswith("emb_size="):
            set_value(cfg, "model.feature_emb_dim", part.split("=", 1)[1], source=where)
