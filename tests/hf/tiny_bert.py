"""A tiny BERT (2 layers, 32 hidden) and its WordPiece tokenizer, made from a config and a vocabulary written here
(no download): as an encoder folder, or as a token classifier with labels."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def corpus_vocabulary() -> list[str]:
    """Word pieces for the tiny corpus: each word's first three characters lower-cased, ##-pieces of single
    characters, so longer words split into several sub-tokens."""
    words = set()
    for name in ("train.txt", "valid.txt", "test.txt"):
        for line in (FIXTURE / name).read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("-DOCSTART-"):
                words.add(line.split()[0].lower())
    heads = sorted({w[:3] for w in words})
    chars = sorted({c for w in words for c in w})
    return list(dict.fromkeys(SPECIALS + heads + chars + [f"##{c}" for c in chars]))  # distinct, in order


def make_tiny_bert(folder: Path, labels: list[str] | None = None, seed: int = 0) -> Path:
    """Write a randomly initialised tiny BERT (seeded) with a fast WordPiece tokenizer to ``folder``; with
    ``labels``, a ``BertForTokenClassification`` whose id2label lists them."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForTokenClassification, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {piece: i for i, piece in enumerate(corpus_vocabulary())}
    core = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(seed)
    if labels is not None:
        config.id2label = dict(enumerate(labels))
        config.label2id = {t: i for i, t in enumerate(labels)}
        model = BertForTokenClassification(config)
    else:
        model = BertModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
