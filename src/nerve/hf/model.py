"""``HFTagger``: a Hugging Face encoder read word by word, a linear tag layer (softmax or CRF) on each word's first
sub-token, and named sites — ``HookPoint`` modules fed by forward hooks on the encoder's real modules, so a hook on
a site edits what the next module reads.

Sites: ``layerN`` (the output of layer N, sub-tokens × hidden), ``ffnN`` (layer N's FFN activations after the
non-linearity, sub-tokens × intermediate: the "neurons" of the transformer-neuron literature) and ``classifier_in``
(the tag layer's input, words × hidden: the one site whose downstream is linear)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nerve.errors import NerveError
from nerve.hf.config import HFModelConfig
from nerve.hf.words import WordBatch, read_words, word_positions
from nerve.model.crf import CRF, transition_constraints
from nerve.model.hooks import HookPoint, hooks

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CLASSIFIER_SITE = "classifier_in"


def folder_weights(folder: str | Path) -> dict[str, str]:
    """SHA-256 of each weights file of a Hugging Face folder (sharded ones too): what identifies the model."""
    d = Path(folder)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin")
                   and (p.name in WEIGHT_FILES or p.name.startswith(("model-", "pytorch_model-"))))
    if not files:
        raise NerveError(f"{d}: no model weights (expected {' or '.join(WEIGHT_FILES)})")
    out = {}
    for p in files:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(functools.partial(f.read, 1 << 20), b""):
                h.update(block)
        out[p.name] = h.hexdigest()
    return out


def read_folder_config(folder: str | Path):
    """The folder's ``transformers`` config (``config.json``), with a one-line error for a folder that is not one."""
    from transformers import AutoConfig

    d = Path(folder)
    if not (d / "config.json").is_file():
        raise NerveError(f"{d}: not a Hugging Face model folder (no config.json)")
    try:
        return AutoConfig.from_pretrained(str(d), local_files_only=True)
    except (ValueError, OSError, json.JSONDecodeError) as err:
        raise NerveError(f"{d / 'config.json'}: cannot be read by transformers ({str(err).splitlines()[0]})") from None


def is_token_classifier(config) -> bool:
    return any(a.endswith("ForTokenClassification") for a in (getattr(config, "architectures", None) or []))


def folder_labels(folder: str | Path, config, tags: Sequence[str]) -> list[str]:
    """The token classifier's labels (``config.id2label`` in id order), checked against the corpus's ``tags``.

    Raises:
        NerveError: one line naming the folder's config.json and the tags only one side has."""
    labels = [config.id2label[i] for i in range(len(config.id2label))]
    theirs, ours = set(labels), set(tags)
    if theirs != ours:
        parts = []
        if ours - theirs:
            parts.append(f"the corpus has {', '.join(sorted(ours - theirs))} which the model lacks")
        if theirs - ours:
            parts.append(f"the model has {', '.join(sorted(theirs - ours))} which the corpus lacks")
        raise NerveError(f"{Path(folder) / 'config.json'}: id2label does not match the corpus's tags "
                         f"({'; '.join(parts)})")
    return labels


def _layers(encoder) -> nn.ModuleList:
    """The encoder's transformer layers (the BERT family's ``encoder.layer``: BERT, RoBERTa, ELECTRA, MiniLM…)."""
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not all(hasattr(m, "intermediate") for m in layers):
        raise NerveError(f"{type(encoder).__name__}: nerve reads the layers of BERT-family encoders (encoder.layer[i] "
                         "with an intermediate FFN module); this architecture is not supported yet")
    return layers


def _route(point: HookPoint, module, inputs, output):
    """Forward hook of a real module: its output passes through the site's hook point (identity unless hooked)."""
    if isinstance(output, tuple):
        return (point(output[0]), *output[1:])
    return point(output)


class HFTagger(nn.Module):
    """Encoder → each word's first sub-token → dropout → ``classifier_in`` → ``hidden2tag`` → softmax or CRF.

    Args:
        encoder: a ``transformers`` base model (``AutoModel``), BERT family.
        tags: the tag names, in the head's order.
        cfg: the model section (head, CRF constraints, pooling of sub-token sites, dropout).
        scheme: the tag scheme (BIO or BIOES) for the CRF's constraints.
        classifier: a token classifier's own linear layer to start from (its labels in ``tags``' order).
    """

    def __init__(self, encoder, tags: Sequence[str], cfg: HFModelConfig, scheme: str,
                 classifier: nn.Linear | None = None):
        super().__init__()
        self.encoder, self.tags, self.cfg = encoder, list(tags), cfg
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier_in = HookPoint()
        self.hidden2tag = nn.Linear(hidden, len(self.tags))
        if classifier is not None:
            self.hidden2tag.load_state_dict(classifier.state_dict())
        self.crf = None
        if cfg.head == "crf":
            allowed = transition_constraints(self.tags, scheme) if cfg.crf_constraints else (None, None, None)
            self.crf = CRF(len(self.tags), *allowed)
        self.n_layers = len(_layers(encoder))
        for i, layer in enumerate(_layers(encoder), 1):
            for name, module in ((f"layer{i}", layer), (f"ffn{i}", layer.intermediate)):
                point = HookPoint()
                self.add_module(name, point)
                module.register_forward_hook(functools.partial(_route, point))
        self._positions: torch.Tensor | None = None  # the sub-tokens a word-level edit writes, of the current batch

    def sites(self) -> list[str]:
        """Every site, input to output: layer1, ffn1, …, then classifier_in."""
        return [s for i in range(1, self.n_layers + 1) for s in (f"ffn{i}", f"layer{i}")] + [CLASSIFIER_SITE]

    def site_units(self, site: str) -> int:
        c = self.encoder.config
        return c.intermediate_size if site.startswith("ffn") else c.hidden_size

    @property
    def n_units(self) -> int:
        return self.encoder.config.hidden_size

    def unit_names(self) -> list[str]:
        return [str(i) for i in range(self.n_units)]

    def emissions(self, batch: WordBatch) -> torch.Tensor:
        """Tag scores (B, L, n_tags) of each word, read at its first sub-token."""
        self._positions = word_positions(batch, self.cfg.pooling)
        try:
            h = self.encoder(input_ids=batch.ids, attention_mask=batch.attention).last_hidden_state
        finally:
            self._positions = None
        return self.head(h, batch)

    def head(self, last: torch.Tensor, batch: WordBatch) -> torch.Tensor:
        """Tag scores (B, L, n_tags) from the last layer's output (B, S, hidden)."""
        words = read_words(last, batch, "first")  # shape: (B, L, hidden)
        return self.hidden2tag(self.classifier_in(self.dropout(words)))

    def best(self, em: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Best tag ids (B, L) of emissions (B, L, n_tags), 0 at padding: argmax, or the CRF's Viterbi."""
        if self.crf is None:
            return em.argmax(dim=-1).masked_fill(~mask, 0)
        return self.crf.decode(em, mask)

    def loss(self, batch: WordBatch) -> torch.Tensor:
        """Mean negative log-likelihood: per word (softmax) or per sentence (CRF)."""
        em = self.emissions(batch)
        if self.crf is not None:
            return self.crf.neg_log_likelihood(em, batch.tags, batch.mask, reduction="mean")
        gold = batch.tags.masked_fill(~batch.mask, -100)
        return F.cross_entropy(em.reshape(-1, em.shape[-1]), gold.reshape(-1), ignore_index=-100)

    @torch.no_grad()
    def decode(self, batch: WordBatch) -> torch.Tensor:
        """Best tag ids (B, L), 0 at padding."""
        return self.best(self.emissions(batch), batch.mask)

    @contextlib.contextmanager
    def edit_words(self, site: str, fn) -> Iterator[None]:
        """Inside the block, ``fn(values)`` edits a site's word-level values: at ``classifier_in`` values are (B, L,
        n) words; at a sub-token site, (P, n) the sub-tokens of the words (first sub-tokens, or all of a word's with
        pooling ``mean``), in the batch's row-major order. ``fn`` returns the edited values."""
        if site == CLASSIFIER_SITE:
            with hooks(self, [(site, lambda m, i, out: fn(out))]):
                yield
            return

        def edit(module, inputs, out):
            pos = self._positions
            new = out.clone()
            new[pos] = fn(out[pos])
            return new

        with hooks(self, [(site, edit)]):
            yield
