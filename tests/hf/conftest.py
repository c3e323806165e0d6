"""The fine-tuned tiny BERT the nerve.hf tests share, and the same weights in a plain transformers model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from tests.hf.tiny_bert import make_tiny_bert

TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
RECIPE = ["train.epochs=6", "train.batch_size=8", "train.lr=5e-3", "train.head_lr=1e-2", "train.warmup=0"]


def tune(folder: Path, out: Path, *settings: str) -> dict:
    from nerve.data.prepare import resolve_data
    from nerve.hf.config import hf_config
    from nerve.hf.train import fine_tune

    cfg = hf_config(folder, [*RECIPE, *settings])
    resolve_data(cfg, str(TINY))
    return fine_tune(cfg, out, log=lambda msg: None)


@pytest.fixture(scope="session")
def tuned(tmp_path_factory) -> Path:
    """A token classifier (labels in an order of its own) fine-tuned 6 epochs with a softmax head (test F1 ≈ 0.8)."""
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hf")
    folder = make_tiny_bert(root / "bert", labels=list(reversed(TAGS)))
    tune(folder, root / "run")
    return root / "run"


def plain_model(run_dir: Path):
    """The fine-tuned weights in a plain ``BertForTokenClassification`` and its tokenizer (eval mode)."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    config = BertConfig.from_pretrained(run_dir / "encoder")
    config.num_labels = len(TAGS)
    plain = BertForTokenClassification(config).eval()
    state = torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]
    mapped = {k.replace("encoder.", "bert.", 1): v for k, v in state.items() if k.startswith("encoder.")}
    mapped |= {"classifier.weight": state["hidden2tag.weight"], "classifier.bias": state["hidden2tag.bias"]}
    missing, unexpected = plain.load_state_dict(mapped, strict=False)
    assert not unexpected and all("pooler" in k for k in missing)
    return plain, AutoTokenizer.from_pretrained(run_dir / "encoder")
