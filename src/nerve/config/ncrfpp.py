"""NCRF++ `.config` files as they are: every key NCRF++ reads, mapped, used by decode, or refused with a reason."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from nerve.config import Config, resolve_embedding_path, set_value, validate
from nerve.errors import NerveError, warn
from nerve.text import text_lines


@dataclass(frozen=True)
class Key:
    """One key of NCRF++'s ``Data.read_config``, and what nerve does with it (the README's table)."""

    name: str
    nerve: str  # what it maps to, in words (the README column)
    target: str = ""  # "section.key" it sets directly, if any


# Every key NCRF++'s utils/data.py read_config reads, in its order.
KEYS = (
    Key("train_dir", "`data.train`", "data.train"),
    Key("dev_dir", "`data.dev`", "data.dev"),
    Key("test_dir", "`data.test`", "data.test"),
    Key("raw_dir", "decode: the input file of `nerve decode CONFIG`"),
    Key("decode_dir", "decode: the output file of `nerve decode CONFIG`"),
    Key("dset_dir", "decode: the run folder is this path without `.dset`"),
    Key("model_dir", "train: the run folder (default of `--out`); decode configs find it as `MODEL_DIR.dset`"),
    Key("load_model_dir", "decode: the run folder is this path without `.N.model` (or the folder itself)"),
    Key("word_emb_dir", "`embeddings.source` (`None`: random vectors); `embeddings.dim` is the file's"),
    Key("char_emb_dir", "refused unless `None`: pretrained character embeddings are not supported"),
    Key("MAX_SENTENCE_LENGTH", "read; nerve keeps every sentence (NCRF++ drops those of this length or more): a "
                               "warning says so"),
    Key("MAX_WORD_LENGTH", "read; no effect, as in NCRF++ (char encoders read a word's first 200 characters)"),
    Key("norm_word_emb", "`embeddings.normalize`", "embeddings.normalize"),
    Key("norm_char_emb", "read; no effect without `char_emb_dir`, as in NCRF++"),
    Key("number_normalized", "`data.number_normalized`", "data.number_normalized"),
    Key("sentence_classification", "`False` read; `True` refused: nerve tags sequences"),
    Key("seg", "`True` read (best epoch by dev entity F1); `False` refused (NCRF++ then selects by token "
               "accuracy)"),
    Key("word_emb_dim", "`embeddings.dim` for random vectors; with a file, a warning when the file's differs",
        "embeddings.dim"),
    Key("char_emb_dim", "`model.char_emb_dim`", "model.char_emb_dim"),
    Key("use_crf", "`model.decoder` = `crf` or `softmax`; imported CRFs have no transition constraints "
                   "(`model.crf_constraints = false`), as NCRF++'s"),
    Key("use_char", "`model.char` = `char_seq_feature` or `none`"),
    Key("word_seq_feature", "`model.encoder` (`LSTM`, `GRU`, `CNN`)"),
    Key("char_seq_feature", "`model.char` (`LSTM`, `GRU`, `CNN`) when `use_char`"),
    Key("nbest", "`train.nbest`: the default n of `nerve decode` (decode configs: the n-best file NCRF++ "
                 "writes)", "train.nbest"),
    Key("feature", "`data.features` (`[POS]` ...) and `model.feature_emb_dim` (`emb_size=`)"),
    Key("optimizer", "`train.optimizer` (`SGD`, `Adam`, `AdamW`); Adagrad, Adadelta, RMSprop refused"),
    Key("ave_batch_loss", "`train.ave_batch_loss`", "train.ave_batch_loss"),
    Key("status", "`train` for `nerve train`, `decode` for `nerve decode`; others refused"),
    Key("cnn_layer", "`model.layers` when `word_seq_feature=CNN`"),
    Key("iteration", "`train.epochs`", "train.epochs"),
    Key("batch_size", "`train.batch_size`", "train.batch_size"),
    Key("char_hidden_dim", "`model.char_hidden`", "model.char_hidden"),
    Key("hidden_dim", "`model.hidden`", "model.hidden"),
    Key("dropout", "`model.dropout`", "model.dropout"),
    Key("lstm_layer", "`model.layers` when `word_seq_feature` is LSTM or GRU"),
    Key("bilstm", "`model.bidirectional`", "model.bidirectional"),
    Key("gpu", "read; the device is `--device` (default: cuda when present)"),
    Key("learning_rate", "`train.lr`", "train.lr"),
    Key("lr_decay", "`train.lr_decay`", "train.lr_decay"),
    Key("clip", "`train.clip` (`None`: off)", "train.clip"),
    Key("momentum", "`train.momentum`", "train.momentum"),
    Key("l2", "`train.l2`", "train.l2"),
)
BY_NAME = {k.name: k for k in KEYS}
_DECODE_KEYS = ("raw_dir", "decode_dir", "dset_dir", "load_model_dir")


@dataclass(frozen=True)
class NcrfppFile:
    """The ``key=value`` lines of an NCRF++ config: key -> (value, line number); a repeated key keeps the last,
    except ``feature``, which NCRF++ reads once per line."""

    path: Path
    values: dict[str, tuple[str, int]]
    features: tuple[tuple[str, int], ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        item = self.values.get(key)
        return item[0] if item else default

    def where(self, key: str) -> str:
        return f"{self.path}:{self.values[key][1]}" if key in self.values else str(self.path)

    @property
    def status(self) -> str:
        return (self.get("status") or "train").lower()


@dataclass(frozen=True)
class DecodeJob:
    """What an NCRF++ decode config asks for."""

    run_dir: Path
    raw: Path
    out: Path
    nbest: int | None  # None: NCRF++'s plain ``word tag`` output


def read_ncrfpp_file(path: str | Path) -> NcrfppFile:
    """Parse ``key=value`` lines (``#`` comments); unknown keys are refused with a suggestion."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8", errors="replace")  # no universal newlines: a lone \r is refused
    values: dict[str, tuple[str, int]] = {}
    features = []
    for lineno, raw in enumerate(text_lines(path, text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise NerveError(f"{path}:{lineno}: expected key=value, got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if key not in BY_NAME:
            close = difflib.get_close_matches(key, list(BY_NAME), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise NerveError(f"{path}:{lineno}: unknown NCRF++ key '{key}'{hint}")
        if key == "feature":
            features.append((value, lineno))
        else:
            values[key] = (value, lineno)
    status = values.get("status", ("train", 0))[0].lower()
    if status not in ("train", "decode"):
        raise NerveError(f"{path}:{values['status'][1]}: status={status}: expected train or decode")
    return NcrfppFile(path, values, tuple(features))


def _bool(value: str, where: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise NerveError(f"{where}: expected True or False, got {value!r}")


def _none(value: str | None) -> bool:
    return value is None or value.strip().lower() in ("", "none")


def read_ncrfpp_config(path: str | Path) -> Config:
    """The nerve Config of an NCRF++ training config (``status=train``, NCRF++'s default)."""
    f = read_ncrfpp_file(path)
    if f.status == "decode":
        raise NerveError(f"{f.where('status')}: an NCRF++ decode config (status=decode); run `nerve decode "
                         f"{f.path}`")
    cfg = Config()
    cfg.train.clip = 0.0
    cfg.model.crf_constraints = False  # NCRF++'s CRF learns every transition
    cfg.data.scheme = "AUTO"  # NCRF++ trains on the tags as written: BIOES in, BIOES out
    use_char, char_kind, layers = False, "cnn", {}
    for key, (value, lineno) in f.values.items():
        where = f"{f.path}:{lineno}"
        spec = BY_NAME[key]
        if spec.target:
            if key == "clip" and _none(value):
                continue
            set_value(cfg, spec.target, value, source=where)
        elif key == "word_emb_dir":
            cfg.embeddings.source = "random" if _none(value) else value
        elif key == "use_crf":
            cfg.model.decoder = "crf" if _bool(value, where) else "softmax"
        elif key == "use_char":
            use_char = _bool(value, where)
        elif key in ("char_seq_feature", "word_seq_feature"):
            kind = value.lower()
            if kind not in ("lstm", "gru", "cnn"):
                raise NerveError(f"{where}: {key}={value}: expected LSTM, GRU or CNN")
            if key == "word_seq_feature":
                cfg.model.encoder = kind
            else:
                char_kind = kind
        elif key == "optimizer":
            cfg.train.optimizer = value.lower()
            if cfg.train.optimizer not in ("sgd", "adam", "adamw"):
                raise NerveError(f"{where}: optimizer {value!r} is not supported; expected SGD, Adam or AdamW")
        elif key in ("cnn_layer", "lstm_layer"):
            if not (value.isascii() and value.isdigit()) or int(value) < 1:
                raise NerveError(f"{where}: {key}: expected a whole number >= 1, got {value!r}")
            layers[key] = int(value)
        else:
            _check_read_only(key, value, where)
    for value, lineno in f.features:
        _feature(cfg, value, f"{f.path}:{lineno}")
    cfg.model.char = char_kind if use_char else "none"
    key = "cnn_layer" if cfg.model.encoder == "cnn" else "lstm_layer"
    cfg.model.cnn_batchnorm = cfg.model.encoder == "cnn"  # NCRF++'s word CNN always has BatchNorm1d
    if key in layers:
        cfg.model.layers = layers[key]
    resolve_embedding_path(cfg, f.path.parent)
    _embedding_dim_from_file(cfg, f)
    return validate(cfg, str(f.path))


def _check_read_only(key: str, value: str, where: str) -> None:
    """Keys that set nothing: refuse the values nerve cannot honour, warn where its behaviour differs."""
    if key == "sentence_classification" and _bool(value, where):
        raise NerveError(f"{where}: sentence_classification=True is not supported: nerve trains sequence "
                         "taggers (one tag per token)")
    if key == "seg" and not _bool(value, where):
        raise NerveError(f"{where}: seg=False is not supported: nerve selects the best epoch by dev entity F1 "
                         "(NCRF++ with seg=False selects by token accuracy)")
    if key == "char_emb_dir" and not _none(value):
        raise NerveError(f"{where}: char_emb_dir={value}: pretrained character embeddings are not supported "
                         "(set char_emb_dir=None; characters are embedded at random, as NCRF++ does then)")
    if key == "MAX_SENTENCE_LENGTH":
        warn(f"{where}: MAX_SENTENCE_LENGTH={value}: nerve keeps every sentence (NCRF++ drops sentences of "
             "this many tokens or more)")
    if key in ("norm_char_emb", "gpu"):
        _bool(value, where)


def _embedding_dim_from_file(cfg: Config, f: NcrfppFile) -> None:
    """Take the embedding file's dimension, as NCRF++ does, warning when ``word_emb_dim`` says otherwise."""
    if cfg.embeddings.source == "random":
        return
    from nerve.embeddings import embedding_dim

    dim = embedding_dim(cfg.embeddings.source)
    if "word_emb_dim" in f.values and dim != cfg.embeddings.dim:
        warn(f"{f.where('word_emb_dim')}: word_emb_dim={cfg.embeddings.dim} but {cfg.embeddings.source} holds "
             f"{dim}-dimensional vectors; using {dim}, as NCRF++ does")
    cfg.embeddings.dim = dim


def ncrfpp_run_dir(path: str | Path) -> str | None:
    """The ``model_dir`` of an NCRF++ training config (the default run folder), or None."""
    value = read_ncrfpp_file(path).get("model_dir")
    return None if _none(value) else value


def read_ncrfpp_decode(path: str | Path) -> DecodeJob:
    """The decode job of an NCRF++ decode config (``status=decode``, ``raw_dir``, ``decode_dir``, ``nbest``, and
    ``load_model_dir`` or ``dset_dir`` naming the run that ``nerve train`` wrote for ``model_dir``)."""
    f = read_ncrfpp_file(path)
    if f.status != "decode":
        raise NerveError(f"{f.path}: status=train (NCRF++'s default): a training config; run `nerve train "
                         f"{f.path}`, or set status=decode with raw_dir, decode_dir and load_model_dir")
    missing = [k for k in ("raw_dir", "decode_dir") if _none(f.get(k))]
    if all(_none(f.get(k)) for k in ("load_model_dir", "dset_dir")):
        missing.append("load_model_dir")
    if missing:
        raise NerveError(f"{f.path}: an NCRF++ decode config needs {', '.join(missing)}")
    nbest = None
    if not _none(f.get("nbest")):
        value = f.get("nbest")
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 100:
            raise NerveError(f"{f.where('nbest')}: nbest={value}: expected a whole number in 1..100")
        nbest = int(value)
    for key in f.values:
        if key not in _DECODE_KEYS + ("status", "nbest") and not BY_NAME[key].target:
            _check_read_only(key, f.get(key), f.where(key))
    return DecodeJob(_run_folder(f), Path(f.get("raw_dir")), Path(f.get("decode_dir")), nbest)


def _run_folder(f: NcrfppFile) -> Path:
    """The nerve run folder named by ``load_model_dir`` (``X.N.model``, ``X.model`` or ``X``) or ``dset_dir``
    (``X.dset``): the first candidate that holds a finished run."""
    tried = []
    for key in ("load_model_dir", "dset_dir"):
        value = f.get(key)
        if _none(value):
            continue
        base = re.sub(r"(\.\d+)?\.model$", "", value) if key == "load_model_dir" else re.sub(r"\.dset$", "", value)
        for cand in dict.fromkeys([value, base]):
            if (Path(cand) / "model.pt").is_file():
                return Path(cand)
            tried.append(cand)
    raise NerveError(f"{f.path}: no nerve run found at {' or '.join(tried)} (train it first: `nerve train` with "
                     "the training config whose model_dir is that path)")


def _feature(cfg: Config, value: str, where: str) -> None:
    parts = value.split()
    name = parts[0] if parts else ""
    if not (len(name) > 2 and name.startswith("[") and name.endswith("]")):
        raise NerveError(f"{where}: expected feature=[NAME] emb_size=N, got {value!r}")
    cfg.data.features.append(name)
    for part in parts[1:]:
        if part.startswith("emb_size="):
            set_value(cfg, "model.feature_emb_dim", part.split("=", 1)[1], source=where)


def key_table() -> str:
    """The README's Markdown table of every NCRF++ key and what nerve does with it."""
    rows = ["| NCRF++ key | in nerve |", "|---|---|"]
    rows += [f"| `{k.name}` | {k.nerve} |" for k in KEYS]
    return "\n".join(rows)
