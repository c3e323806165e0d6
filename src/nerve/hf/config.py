"""The config of a fine-tuned Hugging Face tagger: the corpus (``nerve.config.DataConfig``, as nerve's taggers), the
model folder and head, and the fine-tuning recipe; TOML on disk, ``--set section.key=value`` overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from nerve.config import DataConfig
from nerve.errors import NerveError

HEADS = ("softmax", "crf")
POOLINGS = ("first", "mean")


@dataclass
class HFModelConfig:
    folder: str = ""  # a local Hugging Face folder: an encoder (AutoModel) or a token classifier
    head: str = "softmax"  # softmax | crf: the tag layer on the words' first sub-tokens
    crf_constraints: bool = True  # forbid illegal BIO/BIOES transitions in the CRF
    pooling: str = "first"  # how a word is read at a sub-token site: first (its first sub-token) | mean
    dropout: float = 0.1  # before the tag layer


@dataclass
class HFTrainConfig:
    epochs: int = 3
    seed: int = 42
    batch_size: int = 32  # sentences
    lr: float = 5e-5  # AdamW, linear warm-up then linear decay to 0
    head_lr: float = 1e-3  # the tag layer and CRF
    weight_decay: float = 0.01
    warmup: float = 0.1  # share of all steps
    clip: float = 1.0  # gradient-norm clipping; 0 = off
    eval_batch_size: int = 64


@dataclass
class HFConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: HFModelConfig = field(default_factory=HFModelConfig)
    train: HFTrainConfig = field(default_factory=HFTrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"kind": {"name": "hf"}, **{f.name: dataclasses.asdict(getattr(self, f.name))
                                           for f in dataclasses.fields(self)}}

    def save(self, path: str | os.PathLike) -> None:
        from nerve.io import atomic_write_text

        atomic_write_text(path, tomli_w.dumps(self.to_dict()))


_SECTIONS = {"data": DataConfig, "model": HFModelConfig, "train": HFTrainConfig}


def is_hf_config(path: str | os.PathLike) -> bool:
    """Whether the TOML file ``path`` is an ``HFConfig`` (its ``[kind] name = "hf"``)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8")).get("kind", {}).get("name") == "hf"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def _coerce(value: Any, typ: type, where: str) -> Any:
    if typ is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and typ in (int, float):
        try:
            value = int(value) if typ is int else float(value)
        except ValueError:
            raise NerveError(f"{where}: expected a {typ.__name__}, got {value!r}") from None
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is list and isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise NerveError(f"{where}: expected a {typ.__name__}, got {value!r}")
    return value


def _set(cfg: HFConfig, dotted: str, value: Any, source: str) -> None:
    section, _, key = dotted.partition(".")
    cls = _SECTIONS.get(section)
    names = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    if key not in names:
        known = ", ".join(f"{s}.{f.name}" for s, c in _SECTIONS.items() for f in dataclasses.fields(c))
        raise NerveError(f"{source}: unknown key {dotted!r}; expected one of {known}")
    typ = {"str": str, "int": int, "float": float, "bool": bool}.get(str(names[key].type), list)
    setattr(getattr(cfg, section), key, _coerce(value, typ, f"{source} {dotted}"))


def validate(cfg: HFConfig, source: str = "config") -> HFConfig:
    """Check every choice and range once; a one-line ``NerveError`` naming the key otherwise."""
    m, t = cfg.model, cfg.train
    checks = [(m.head in HEADS, "model.head", m.head, f"one of {', '.join(HEADS)}"),
              (m.pooling in POOLINGS, "model.pooling", m.pooling, f"one of {', '.join(POOLINGS)}"),
              (0.0 <= m.dropout < 1.0, "model.dropout", m.dropout, "a number in [0, 1)"),
              (t.epochs >= 1, "train.epochs", t.epochs, "at least 1"),
              (t.batch_size >= 1, "train.batch_size", t.batch_size, "at least 1"),
              (t.eval_batch_size >= 1, "train.eval_batch_size", t.eval_batch_size, "at least 1"),
              (t.lr > 0, "train.lr", t.lr, "a positive number"),
              (t.head_lr > 0, "train.head_lr", t.head_lr, "a positive number"),
              (t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "at least 0"),
              (0 <= t.warmup < 1, "train.warmup", t.warmup, "a share in [0, 1)"),
              (t.clip >= 0, "train.clip", t.clip, "at least 0 (0 = off)")]
    for ok, key, value, expected in checks:
        if not ok:
            raise NerveError(f"{source}: {key} = {value!r}; expected {expected}")
    return cfg


def hf_config(folder: str | os.PathLike, overrides: list[str] | None = None) -> HFConfig:
    """The default config for fine-tuning the model ``folder``, with ``--set`` overrides applied."""
    cfg = HFConfig()
    cfg.model.folder = str(Path(folder).resolve())
    return apply_overrides(cfg, overrides or [])


def apply_overrides(cfg: HFConfig, overrides: list[str]) -> HFConfig:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise NerveError(f"--set {item}: expected section.key=value")
        _set(cfg, key.strip(), value.strip(), "--set")
    return validate(cfg, "--set")


def load_hf_config(path: str | os.PathLike) -> HFConfig:
    """An ``HFConfig`` from its TOML file (as a run folder's ``config.toml``)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise NerveError(f"{path}: cannot be read as TOML ({type(err).__name__})") from None
    cfg = HFConfig()
    for section in _SECTIONS:
        for key, value in (data.get(section) or {}).items():
            _set(cfg, f"{section}.{key}", value, str(path))
    return validate(cfg, str(path))
