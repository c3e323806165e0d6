"""Tagger: every encoder/char/decoder combination is padding-invariant; hooks capture and ablate exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerve.config import Config, validate
from nerve.data.batching import Encoded, make_batch
from nerve.data.vocab import Vocab, Vocabs
from nerve.model.hooks import ablate, capture, hook_point, hooks
from nerve.model.tagger import Tagger

TAGS = ["B-LOC", "I-LOC", "B-PER", "I-PER", "O"]
VARIANTS = [
    dict(encoder="lstm", bidirectional=False),
    dict(encoder="lstm", bidirectional=True, layers=2),
    dict(encoder="gru", bidirectional=True),
    dict(encoder="gru", bidirectional=False, char="lstm"),
    dict(encoder="cnn", layers=2, char="cnn"),
    dict(encoder="lstm", bidirectional=True, char="gru", cap_feature=True, decoder="crf"),
    dict(encoder="cnn", decoder="crf"),
    dict(encoder="cnn", layers=2, cnn_batchnorm=True, decoder="crf"),
]


def make_model(**model_kw) -> Tagger:
    cfg = Config()
    cfg.model.hidden = 12
    for k, v in model_kw.items():
        setattr(cfg.model, k, v)
    validate(cfg)
    vocabs = Vocabs(Vocab([f"w{i}" for i in range(30)]), Vocab(list("abcdefgh")), Vocab(TAGS, specials=False),
                    [Vocab(["NN", "VB"])])
    torch.manual_seed(0)
    model = Tagger(cfg, vocabs, word_dim=6).eval()
    with torch.no_grad():
        if model.crf is not None:
            model.crf.transitions.normal_()
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
    return model


def random_items(n: int, seed: int = 0) -> list[Encoded]:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        L = int(rng.integers(1, 9))
        chars = [rng.integers(1, 10, size=int(rng.integers(1, 6))) for _ in range(L)]
        items.append(Encoded(rng.integers(1, 32, size=L), chars, rng.integers(1, 6, size=L),
                             [rng.integers(1, 4, size=L)], rng.integers(0, len(TAGS), size=L)))
    return items


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()))
def test_batched_emissions_and_decode_equal_unbatched(variant):
    model = make_model(**variant)
    items = random_items(6)
    batch = make_batch(items)
    em = model.emissions(batch)
    dec = model.decode(batch)
    for i, item in enumerate(items):
        one = make_batch([item])
        L = len(item.words)
        torch.testing.assert_close(em[i, :L], model.emissions(one)[0], rtol=1e-5, atol=1e-5)
        assert torch.equal(dec[i, :L], model.decode(one)[0])


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=["uni", "bi2", "gru"])
def test_loss_is_finite_and_differentiable(variant):
    model = make_model(**variant).train()
    loss = model.loss(make_batch(random_items(4)))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.hidden2tag.weight.grad is not None


def test_unit_names_forward_then_backward_for_bidirectional():
    names = make_model(encoder="lstm", bidirectional=True).unit_names()
    assert names[:2] == ["f0", "f1"] and names[6:8] == ["b0", "b1"] and len(names) == 12


def test_unit_names_are_indices_for_unidirectional_and_cnn():
    assert make_model(encoder="lstm").unit_names() == [str(i) for i in range(12)]
    assert make_model(encoder="cnn").unit_names()[-1] == "11"


def test_capture_records_the_input_of_the_tag_layer():
    model = make_model(encoder="lstm", bidirectional=True)
    batch = make_batch(random_items(3))
    with capture(model) as store:
        em = model.emissions(batch)
    assert len(store) == 1
    torch.testing.assert_close(model.hidden2tag(store[0]), em)


def test_ablate_equals_zeroing_units_by_hand():
    model = make_model(encoder="lstm")
    batch = make_batch(random_items(3))
    with capture(model) as store:
        model.emissions(batch)
    h = store[0].clone()
    h[..., [1, 5, 7]] = 0.0
    with ablate(model, [1, 5, 7]):
        em = model.emissions(batch)
    torch.testing.assert_close(em, model.hidden2tag(h))


def test_hooks_are_removed_even_when_the_block_raises():
    model = make_model()
    with pytest.raises(RuntimeError):
        with ablate(model, [0]):
            raise RuntimeError("boom")
    assert not hook_point(model, "encoder_out")._forward_hooks


def test_unknown_hook_point_is_a_value_error():
    with pytest.raises(ValueError, match="no hook point"):
        with hooks(make_model(), [("nope", lambda *a: None)]):
            pass


def test_nbest_requires_crf():
    with pytest.raises(ValueError, match="CRF"):
        make_model().decode(make_batch(random_items(2)), nbest=3)


def test_own_sgd_matches_torch_sgd_with_momentum_and_l2():
    from nerve.train.optim import SGD

    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours = SGD(a, lr=0.1, momentum=0.9, weight_decay=0.01)
    ref = torch.optim.SGD(b, lr=0.1, momentum=0.9, weight_decay=0.01)
    for _ in range(4):
        grads = [torch.randn_like(p) for p in a]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q)


def _train_twins(n_words: int, lrs: list[float], l2: float, momentum: float, ids_shape: tuple[int, int]):
    """Train one embedding with dense torch.optim.SGD and a copy with RowSparseSGD on the same random
    squared-error steps (one step per entry of ``lrs``); return (row-sparse weight, dense weight)."""
    from nerve.train.optim import RowSparseSGD

    torch.manual_seed(0)
    dense = torch.nn.Embedding(n_words, 5, padding_idx=0)
    sparse = torch.nn.Embedding(n_words, 5, padding_idx=0)
    sparse.weight.data.copy_(dense.weight.data)
    ref = torch.optim.SGD(dense.parameters(), lr=lrs[0], momentum=momentum, weight_decay=l2)
    rs = RowSparseSGD(sparse, momentum=momentum)
    for lr in lrs:
        for g in ref.param_groups:
            g["lr"] = lr
        ids = torch.randint(0, n_words, ids_shape)
        target = torch.randn(*ids_shape, 5)
        ref.zero_grad()
        ((dense(ids) - target) ** 2).sum().backward()
        ref.step()
        ((rs.lookup(ids) - target) ** 2).sum().backward()
        rs.step(lr, l2)
    rs.flush()
    return sparse.weight, dense.weight


@pytest.mark.parametrize("lr,l2", [(0.5, 0.01), (0.015, 1e-8)])
def test_row_sparse_sgd_matches_dense_torch_sgd(lr, l2):
    sparse, dense = _train_twins(20, [lr] * 3, l2, 0.0, (4, 6))
    torch.testing.assert_close(sparse, dense)


@pytest.mark.parametrize("l2", [0.0, 1e-8])
def test_row_sparse_momentum_sgd_matches_dense_torch_sgd(l2):
    # few rows per step, so most rows coast on their momentum; the rate changes halfway as in a new epoch
    sparse, dense = _train_twins(30, [0.1] * 20 + [0.05] * 20, l2, 0.9, (2, 3))
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)


def test_row_sparse_momentum_state_round_trips():
    from nerve.train.optim import RowSparseSGD

    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 3)
    rs = RowSparseSGD(emb, momentum=0.9)
    rs.lookup(torch.tensor([[1, 2]])).sum().backward()
    rs.step(0.1, 0.0)
    rs.flush()
    other = RowSparseSGD(torch.nn.Embedding(10, 3), momentum=0.9)
    other.load_state_dict(rs.state_dict())
    torch.testing.assert_close(other.buf, rs.buf)
    assert other.t == rs.t == 1
