"""make_batch: padded tensors equal a plain per-token construction."""

from __future__ import annotations

import numpy as np
import pytest

from nerve.data.batching import Encoded, make_batch


def _items(seed: int, with_tags: bool = True, n_feats: int = 1) -> list[Encoded]:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(int(rng.integers(1, 6))):
        L = int(rng.integers(1, 8))
        chars = [rng.integers(1, 30, size=int(rng.integers(0, 7))) for _ in range(L)]  # a token may have none
        feats = [rng.integers(1, 5, size=L) for _ in range(n_feats)]
        tags = rng.integers(0, 9, size=L) if with_tags else None
        items.append(Encoded(rng.integers(1, 99, size=L), chars, rng.integers(1, 6, size=L), feats, tags))
    return items


def _reference(items: list[Encoded]) -> dict[str, np.ndarray]:
    n, L = len(items), max(len(e.words) for e in items)
    C = max([len(c) for e in items for c in e.chars] + [1])
    out = {k: np.zeros((n, L), dtype=np.int64) for k in ("words", "caps", "tags", "char_lens", "feat")}
    out["chars"] = np.zeros((n, L, C), dtype=np.int64)
    for i, e in enumerate(items):
        for j in range(len(e.words)):
            out["words"][i, j], out["caps"][i, j] = e.words[j], e.caps[j]
            out["feat"][i, j] = e.feats[0][j]
            if e.tags is not None:
                out["tags"][i, j] = e.tags[j]
            out["char_lens"][i, j] = len(e.chars[j])
            out["chars"][i, j, : len(e.chars[j])] = e.chars[j]
    return out


@pytest.mark.parametrize("seed", range(5))
def test_make_batch_equals_per_token_padding(seed):
    items = _items(seed)
    batch, ref = make_batch(items), _reference(items)
    for name in ("words", "caps", "tags", "char_lens", "chars"):
        np.testing.assert_array_equal(getattr(batch, name).numpy(), ref[name], err_msg=name)
    np.testing.assert_array_equal(batch.feats[0].numpy(), ref["feat"])
    assert batch.lengths.tolist() == [len(e.words) for e in items]
    assert batch.mask.numpy().sum(axis=1).tolist() == batch.lengths.tolist()


def test_make_batch_without_tags_or_chars():
    items = _items(7, with_tags=False, n_feats=0)
    batch = make_batch(items, with_chars=False)
    assert batch.tags is None and batch.feats == []
    assert batch.chars.shape == (len(items), max(len(e.words) for e in items), 1) and not batch.chars.any()
    np.testing.assert_array_equal(batch.words.numpy(), _reference([Encoded(e.words, e.chars, e.caps,
                                  [e.words], None) for e in items])["words"])
