"""Training helpers: word dropout of singletons, weight averaging."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerve.data.batching import Encoded
from nerve.data.prepare import drop_words, epoch_order, singleton_ids
from nerve.train.optim import WeightAverage


def _item(ids):
    ids = np.array(ids, dtype=np.int64)
    return Encoded(ids, [], np.zeros_like(ids), [], np.zeros_like(ids))


def test_singletons_are_words_seen_once_and_never_padding_or_unk():
    once = singleton_ids([_item([1, 2, 3, 3]), _item([4, 5, 4])], n_words=7)
    assert once.tolist() == [False, False, True, False, False, True, False]


def test_word_dropout_replaces_only_singletons_by_unk():
    once = np.array([False, False, True, False, True])
    words = torch.tensor([[2, 3, 4, 3, 2] * 40])
    out = drop_words(words, once, 0.5, np.random.default_rng(0)).numpy()[0]
    src = words.numpy()[0]
    assert set(out[src == 3]) == {3}
    assert set(out[np.isin(src, [2, 4])]) == {1, 2, 4}
    assert 0.3 < np.mean(out[np.isin(src, [2, 4])] == 1) < 0.7


def test_word_dropout_zero_leaves_the_batch_alone():
    once = np.array([False, False, True])
    words = torch.tensor([[2, 2, 0]])
    assert drop_words(words, once, 0.0, np.random.default_rng(0)) is words


def test_weight_average_is_the_mean_and_swapping_restores_the_trained_weights():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    snaps = []
    avg = WeightAverage()
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(torch.randn(2, 3))
        snaps.append(model.weight.detach().clone())
        avg.add(model)
    trained = model.weight.detach().clone()
    with avg.swapped_in(model):
        torch.testing.assert_close(model.weight.detach(), torch.stack(snaps).mean(0))
    torch.testing.assert_close(model.weight.detach(), trained)
    assert avg.n == 3


def _cfg(batching):
    from nerve.config import Config

    cfg = Config()
    cfg.train.batching, cfg.train.batch_size = batching, 4
    return cfg


@pytest.mark.parametrize("batching", ["random", "bucket", "pool"])
def test_epoch_order_is_a_permutation(batching):
    items = [_item([2] * n) for n in np.random.default_rng(0).integers(1, 30, 1000)]
    order = epoch_order(_cfg(batching), items, 0)
    assert sorted(order.tolist()) == list(range(1000))


def test_pool_batching_pads_less_than_random_and_more_than_bucket():
    items = [_item([2] * n) for n in np.random.default_rng(0).integers(1, 30, 1000)]
    lengths = np.array([len(e.words) for e in items])

    def padded(batching):
        order = epoch_order(_cfg(batching), items, 0)
        return sum(lengths[order[s: s + 4]].max() * len(order[s: s + 4]) for s in range(0, 1000, 4))

    assert padded("bucket") < padded("pool") < padded("random")


@pytest.mark.parametrize("l2,sparse", [(1e-8, True), (1e-3, False)])
def test_momentum_sgd_updates_embeddings_row_sparsely_only_when_l2_rounds_away(l2, sparse):
    from nerve.train.optim import make_optimizer
    from tests.model.test_tagger import make_model

    model = make_model()
    cfg = model.cfg
    cfg.train.momentum, cfg.train.l2 = 0.9, l2
    opt = make_optimizer(cfg.train, model)
    assert (opt.sparse is not None) == sparse and (opt.word_lookup is not None) == sparse


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clipping_matches_clip_grad_norm_with_the_embedding_rows_counted(max_norm):
    from nerve.train.optim import SGD, Optimizer, RowSparseSGD

    torch.manual_seed(0)
    emb = torch.nn.Embedding(6, 3)
    lin = torch.nn.Linear(3, 2)
    ids = torch.tensor([[1, 4, 4, 2]])

    def loss(words):
        return lin(words).pow(2).sum()

    rs = RowSparseSGD(emb)
    loss(rs.lookup(ids)).backward()
    Optimizer(SGD(lin.parameters(), lr=0.1), rs).clip(max_norm)
    ours = [p.grad.clone() for p in lin.parameters()] + [rs.rows.grad.clone()]

    lin.zero_grad()
    loss(emb(ids)).backward()
    torch.nn.utils.clip_grad_norm_(list(lin.parameters()) + [emb.weight], max_norm)
    ref = [p.grad for p in lin.parameters()] + [emb.weight.grad[rs.index]]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
