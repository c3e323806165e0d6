"""Typed experiment config: TOML sections, `--set section.key=value` overrides, NCRF++ `.config` import."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from nerve.errors import NerveError


@dataclass
class DataConfig:
    train: str = "train.txt"  # file names inside the corpus folder, or paths
    dev: str = "valid.txt"
    test: str = "test.txt"
    scheme: str = "BIO"  # tag scheme used for training: BIO, BIOES, or AUTO = the train file's (IOB1 -> BIO)
    input_scheme: str = "auto"  # scheme of the files: auto (BIOES if E-/S- tags occur, else BIO), BIO, IOB1, BIOES
    repair_bio: bool = False  # turn an I-x after O / another type into B-x instead of refusing the file
    number_normalized: bool = True  # digits -> 0, as NCRF++
    features: list[str] = field(default_factory=list)  # extra input columns: "1", "2" (column index) or "[POS]"


@dataclass
class EmbeddingsConfig:
    source: str = "glove-6b-50d"  # "glove-6b-50d", a GloVe/word2vec .txt/.gz/.zip path, or "random"
    dim: int = 50  # inferred from a file; used for "random"
    fine_tune: bool = True
    lowercase_fallback: bool = True
    normalize: bool = False  # scale every pretrained vector to unit length (NCRF++'s norm_word_emb)


@dataclass
class ModelConfig:
    char: str = "none"  # none | lstm | gru | cnn
    char_emb_dim: int = 30
    char_hidden: int = 50
    cap_feature: bool = False  # built-in capitalisation feature
    cap_emb_dim: int = 4
    feature_emb_dim: int = 20  # for each extra input column
    encoder: str = "lstm"  # lstm | gru | cnn
    bidirectional: bool = False
    layers: int = 1
    hidden: int = 50  # units at the analysis site (split across directions when bidirectional)
    cnn_kernel: int = 3
    cnn_layers: int = 0  # word CNN layers (NCRF++'s cnn_layer) when it differs from layers; 0 = layers
    cnn_batchnorm: bool = False  # word CNN: BatchNorm1d (real tokens) after each conv -> ReLU -> dropout, as NCRF++
    dropout: float = 0.5
    decoder: str = "softmax"  # softmax | crf
    crf_constraints: bool = True  # forbid illegal BIO/BIOES transitions in the CRF


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 42
    batch_size: int = 10
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.015
    lr_decay: float = 0.05  # lr / (1 + lr_decay * epoch), SGD only (NCRF++)
    momentum: float = 0.0
    l2: float = 1e-8
    clip: float = 0.0  # gradient-norm clipping; 0 = off
    ave_batch_loss: bool = False
    word_dropout: float = 0.0  # chance that a word seen once in train is read as <unk> (Lample et al. 2016)
    average_from: int = 0  # from this epoch on, evaluate/save the mean of the epoch-end weights (SWA); 0 = off
    # random (NCRF++) | bucket (similar lengths together, shuffled; faster) | pool (sorted within random pools)
    batching: str = "random"
    eval_batch_size: int = 256
    nbest: int = 1


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from nerve.io import atomic_write_text

        atomic_write_text(path, tomli_w.dumps(self.to_dict()))


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
_CHOICES = {
    ("data", "scheme"): ("BIO", "BIOES", "AUTO"),
    ("data", "input_scheme"): ("AUTO", "BIO", "IOB1", "BIOES"),
    ("model", "char"): ("none", "lstm", "gru", "cnn"),
    ("model", "encoder"): ("lstm", "gru", "cnn"),
    ("model", "decoder"): ("softmax", "crf"),
    ("train", "optimizer"): ("sgd", "adam", "adamw"),
    ("train", "batching"): ("random", "bucket", "pool"),
}
_POSITIVE = ({("model", k) for k in ("char_emb_dim", "char_hidden", "cap_emb_dim", "feature_emb_dim", "layers",
                                     "hidden", "cnn_kernel")}
             | {("train", k) for k in ("batch_size", "eval_batch_size", "nbest")} | {("embeddings", "dim")})
_NON_NEGATIVE = {("train", k) for k in ("epochs", "lr", "lr_decay", "momentum", "l2", "clip", "average_from",
                                         "seed")} | {("model", "cnn_layers")}
# Upper bounds that keep memory and time finite (a seed must fit numpy's and torch's 32-bit seeding).
_AT_MOST = (("train", "seed", 2**32 - 1), ("train", "nbest", 100), ("train", "epochs", 100_000),
            ("train", "batch_size", 100_000), ("train", "eval_batch_size", 100_000), ("model", "layers", 64),
            ("model", "hidden", 100_000), ("embeddings", "dim", 100_000), ("model", "char_hidden", 100_000),
            ("model", "char_emb_dim", 100_000), ("model", "cnn_kernel", 99), ("model", "cnn_layers", 64))
# Keys added after runs were first fingerprinted: left out of a run's identity while at this value (which
# behaves as before the key existed), so that older runs stay valid.
LATER_KEYS = {("model", "cnn_layers"): 0, ("model", "cnn_batchnorm"): False}
_FEATURE = re.compile(r"[1-9][0-9]*|\[[^\[\]\s]+\]")


def _section_class(name: str) -> type:
    return {"data": DataConfig, "embeddings": EmbeddingsConfig, "model": ModelConfig, "train": TrainConfig}[name]


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(options)})"


def _field_type(cls: type, key: str) -> Any:
    return typing.get_type_hints(cls)[key]


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check/convert ``value`` to ``typ``; raise NerveError naming ``where``."""
    origin = typing.get_origin(typ)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise NerveError(f"{where}: expected a list, got {value!r}")
        return [str(v) for v in value]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise NerveError(f"{where}: expected true or false, got {value!r}")
    if typ in (int, float):
        return _number(value, typ, where)
    if typ is str:
        if isinstance(value, (dict, list)):
            raise NerveError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise NerveError(f"{where}: unsupported type")


def _number(value: Any, typ: type, where: str) -> int | float:
    """``value`` as a finite int or float (integral floats and numeric strings accepted; booleans, NaN and
    infinities refused)."""
    what = "an integer" if typ is int else "a finite number"
    if not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise NerveError(f"{where}: expected {what}, got {value!r}")
        if isinstance(value, (int, float)) and (typ is float or float(value).is_integer()):
            return typ(value)
        if isinstance(value, str):
            try:
                number = typ(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
    raise NerveError(f"{where}: expected {what}, got {value!r}")


def set_value(cfg: Config, dotted: str, value: Any, source: str = "--set") -> None:
    """Set ``section.key`` on ``cfg`` with type checks and suggestions for misspelled names."""
    if "." not in dotted:
        raise NerveError(f"{source}: '{dotted}' must be section.key (sections: {', '.join(SECTIONS)})")
    section, key = dotted.split(".", 1)
    if section not in SECTIONS:
        raise NerveError(f"{source}: unknown section '{section}'{_suggest(section, list(SECTIONS))}")
    cls = _section_class(section)
    names = [f.name for f in dataclasses.fields(cls)]
    if key not in names:
        raise NerveError(f"{source}: unknown key '{section}.{key}'{_suggest(key, names)}")
    where = f"{source}: {section}.{key}"
    setattr(getattr(cfg, section), key, _coerce(value, _field_type(cls, key), where))


def validate(cfg: Config, source: str = "config") -> Config:
    """Check choices and ranges; raise NerveError naming the key."""
    for (section, key), choices in _CHOICES.items():
        val = getattr(getattr(cfg, section), key)
        norm = val.upper() if key in ("scheme", "input_scheme") else val.lower()
        if norm not in choices:
            raise NerveError(f"{source}: {section}.{key} = {val!r}; expected one of {', '.join(choices)}")
        setattr(getattr(cfg, section), key, norm)
    for section, key in _POSITIVE:
        if getattr(getattr(cfg, section), key) <= 0:
            raise NerveError(f"{source}: {section}.{key} must be > 0, got {getattr(getattr(cfg, section), key)}")
    for section, key in _NON_NEGATIVE:
        if getattr(getattr(cfg, section), key) < 0:
            raise NerveError(f"{source}: {section}.{key} must be >= 0, got {getattr(getattr(cfg, section), key)}")
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise NerveError(f"{source}: model.dropout must be in [0, 1), got {cfg.model.dropout}")
    if not 0.0 <= cfg.train.word_dropout < 1.0:
        raise NerveError(f"{source}: train.word_dropout must be in [0, 1), got {cfg.train.word_dropout}")
    for section, key, top in _AT_MOST:
        if getattr(getattr(cfg, section), key) > top:
            raise NerveError(f"{source}: {section}.{key} must be <= {top:,}, got {getattr(getattr(cfg, section), key)}")
    for feat in cfg.data.features:
        if not _FEATURE.fullmatch(feat):
            raise NerveError(f"{source}: data.features entry {feat!r}: expected a column number (\"1\" = the column "
                             "after the word) or an NCRF++ name in brackets like \"[POS]\"")
    if cfg.model.bidirectional and cfg.model.encoder != "cnn" and cfg.model.hidden % 2:
        raise NerveError(f"{source}: model.hidden must be even for a bidirectional encoder, got {cfg.model.hidden}")
    return cfg


def from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Build a Config from nested dicts (as read from TOML), with type checks."""
    cfg = Config()
    if not isinstance(data, dict):
        raise NerveError(f"{source}: expected sections {', '.join(SECTIONS)}")
    for section, values in data.items():
        if section not in SECTIONS:
            raise NerveError(f"{source}: unknown section [{section}]{_suggest(section, list(SECTIONS))}")
        if not isinstance(values, dict):
            raise NerveError(f"{source}: [{section}] must be a table of key = value lines")
        for key, value in values.items():
            set_value(cfg, f"{section}.{key}", value, source=source)
    return validate(cfg, source)


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """Read a TOML config (or an NCRF++ ``.config`` file) and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise NerveError(f"{path}: no such config file")
    if path.suffix == ".config":
        from nerve.config.ncrfpp import read_ncrfpp_config

        cfg = read_ncrfpp_config(path)
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise NerveError(f"{path}: not a valid TOML file: {err}") from None
        cfg = from_dict(data, source=str(path))
    apply_overrides(cfg, overrides or [])
    resolve_embedding_path(cfg, path.parent)
    return cfg


def resolve_embedding_path(cfg: Config, base: Path) -> None:
    """Make a relative embedding-file path absolute (relative to the working directory, else the config's folder)."""
    src = cfg.embeddings.source
    if src in ("random", "glove-6b-50d") or Path(src).is_absolute():
        return
    for cand in (Path(src), base / src):
        if cand.exists():
            cfg.embeddings.source = str(cand.resolve())
            return
    raise NerveError(f"embeddings.source: {src} not found (expected glove-6b-50d, random, or a vector file)")


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (TOML values, or bare strings) in order."""
    for item in overrides:
        if "=" not in item:
            raise NerveError(f"--set {item!r}: expected section.key=value")
        dotted, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        set_value(cfg, dotted.strip(), value)
    return validate(cfg, "--set")
