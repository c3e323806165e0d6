"""Vocabularies for words, characters, tags and feature columns (built from training data only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain

from nerve.tags import sort_key

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """A string <-> id map. With ``specials`` ids 0 and 1 are padding and unknown."""

    def __init__(self, items: Iterable[str] = (), specials: bool = True):
        self.specials = specials
        self.itos: list[str] = [PAD, UNK] if specials else []
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        for item in items:
            self.add(item)

    def add(self, item: str) -> int:
        if item not in self.stoi:
            self.stoi[item] = len(self.itos)
            self.itos.append(item)
        return self.stoi[item]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def get(self, item: str) -> int:
        """Id of ``item``; the unknown id (1) when absent (KeyError without specials)."""
        if self.specials:
            return self.stoi.get(item, 1)
        return self.stoi[item]

    def to_list(self) -> list[str]:
        return list(self.itos)

    @classmethod
    def from_list(cls, itos: list[str], specials: bool = True) -> Vocab:
        v = cls(specials=False)
        v.specials = specials
        v.itos = list(itos)
        v.stoi = {s: i for i, s in enumerate(v.itos)}
        return v


@dataclass
class Vocabs:
    """All vocabularies a model needs."""

    words: Vocab
    chars: Vocab
    tags: Vocab  # no padding tag: ids 0..n_tags-1
    features: list[Vocab] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "words": self.words.to_list(),
            "chars": self.chars.to_list(),
            "tags": self.tags.to_list(),
            "features": [f.to_list() for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Vocabs:
        return cls(
            words=Vocab.from_list(d["words"]),
            chars=Vocab.from_list(d["chars"]),
            tags=Vocab.from_list(d["tags"], specials=False),
            features=[Vocab.from_list(f) for f in d["features"]],
        )


def _by_count(counts: Counter[str]) -> list[str]:
    """Items by descending count, ties alphabetically (a stable sort keeps the alphabetical order of ties)."""
    items = sorted(counts)
    items.sort(key=counts.__getitem__, reverse=True)
    return items


def build_vocabs(words: list[list[str]], tags: list[list[str]], features: list[list[list[str]]]) -> Vocabs:
    """Build vocabularies from training sentences (``features[k][s]`` is column k of sentence s)."""
    counts = Counter(chain.from_iterable(words))
    word_vocab = Vocab(_by_count(counts))
    chars: Counter[str] = Counter()
    for w, n in counts.items():  # each distinct word once, weighted by its count: same counts, ~10x faster
        for c in w:
            chars[c] += n
    char_vocab = Vocab(_by_count(chars))
    tag_set = sorted({t for sent in tags for t in sent}, key=sort_key)
    tag_vocab = Vocab(tag_set, specials=False)
    feat_vocabs = [Vocab(sorted({v for sent in col for v in sent})) for col in features]
    return Vocabs(word_vocab, char_vocab, tag_vocab, feat_vocabs)
