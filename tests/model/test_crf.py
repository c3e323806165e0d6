"""Tests for nerve.model.crf: the linear-chain CRF against brute-force enumeration of tag sequences."""

import itertools

import pytest
import torch

from nerve.model.crf import CRF, FORBIDDEN, NoLegalPath, log_partition, transition_constraints

SEEDS = [0, 1, 2]
SIZES = [(num_tags, seq_len) for num_tags in (3, 4, 5) for seq_len in (1, 2, 3, 4)]
BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


# ---------------------------------------------------------------------------- helpers


def make_crf(num_tags, seed, constraints=None):
    """A float64 CRF with N(0, 1) parameters (larger than the init, so paths differ clearly)."""
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(num_tags, *(constraints or ())).double()
    with torch.no_grad():
        for param in (crf.start_transitions, crf.end_transitions, crf.transitions):
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64))
    return crf


def random_emissions(batch_size, seq_len, num_tags, seed, scale=1.0):
    gen = torch.Generator().manual_seed(1000 + seed)
    return scale * torch.randn(batch_size, seq_len, num_tags, generator=gen, dtype=torch.float64)


def full_mask(batch_size, seq_len):
    return torch.ones(batch_size, seq_len, dtype=torch.bool)


def lengths_mask(lengths, seq_len):
    return torch.arange(seq_len) < torch.tensor(lengths)[:, None]


def all_paths(num_tags, seq_len):
    # shape: (num_tags ** seq_len, seq_len)
    return torch.tensor(list(itertools.product(range(num_tags), repeat=seq_len)), dtype=torch.long)


def path_scores(start, trans, end, emissions, paths):
    """Score of each path for one sequence, from the definition. emissions (L, T), paths (P, L)."""
    seq_len = emissions.size(0)
    score = emissions[torch.arange(seq_len), paths].sum(dim=1) + start[paths[:, 0]] + end[paths[:, -1]]
    if seq_len > 1:
        score = score + trans[paths[:, :-1], paths[:, 1:]].sum(dim=1)
    return score


def brute_force(crf, emissions, keep=None):
    """All paths for one sequence (L, T) with their scores under crf's effective transitions,
    sorted best first; ``keep`` optionally filters paths (a predicate on a list of tag ids)."""
    paths = all_paths(crf.num_tags, emissions.size(0))
    if keep is not None:
        paths = paths[torch.tensor([keep(p.tolist()) for p in paths])]
    with torch.no_grad():
        scores = path_scores(*crf.effective_transitions(), emissions, paths)
    order = scores.argsort(descending=True)
    return paths[order], scores[order]


def is_legal_bio(path, tags=BIO_TAGS):
    names = [tags[i] for i in path]
    for i, name in enumerate(names):
        if name.startswith("I-"):
            if i == 0 or names[i - 1] not in ("B-" + name[2:], name):
                return False
    return True


# ---------------------------------------------------------------------------- score / likelihood


@pytest.mark.parametrize("seed", SEEDS)
def test_score_matches_sum_of_start_emission_transition_and_end_scores(seed):
    crf = make_crf(4, seed)
    emissions = random_emissions(2, 3, 4, seed)
    tags = torch.tensor([[0, 3, 1], [2, 2, 0]])
    params = (crf.start_transitions, crf.transitions, crf.end_transitions)
    expected = torch.cat([path_scores(*params, emissions[b], tags[b : b + 1]) for b in range(2)])
    torch.testing.assert_close(crf.score(emissions, tags, full_mask(2, 3)), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_tags,seq_len", SIZES)
def test_log_likelihood_equals_path_score_minus_logsumexp_over_all_paths(seed, num_tags, seq_len):
    crf = make_crf(num_tags, seed)
    emissions = random_emissions(1, seq_len, num_tags, seed)
    paths, scores = brute_force(crf, emissions[0])
    log_z = torch.logsumexp(scores, dim=0)
    # check a few paths: best, worst and one in between
    for row in (0, len(paths) // 2, len(paths) - 1):
        tags = paths[row].unsqueeze(0)
        ll = crf.log_likelihood(emissions, tags, full_mask(1, seq_len))
        torch.testing.assert_close(ll, (scores[row] - log_z).reshape(1))


@pytest.mark.parametrize("seed", SEEDS)
def test_likelihoods_of_all_paths_sum_to_one(seed):
    crf = make_crf(3, seed)
    emissions = random_emissions(1, 3, 3, seed)
    paths = all_paths(3, 3)
    ll = crf.log_likelihood(emissions.expand(len(paths), -1, -1), paths, full_mask(len(paths), 3))
    torch.testing.assert_close(ll.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_neg_log_likelihood_reductions_sum_mean_none():
    crf = make_crf(4, 0)
    emissions = random_emissions(3, 4, 4, 0)
    tags = torch.randint(4, (3, 4), generator=torch.Generator().manual_seed(0))
    mask = lengths_mask([4, 2, 1], 4)
    ll = crf.log_likelihood(emissions, tags, mask)
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask, reduction="none"), -ll)
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask), -ll.sum())
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask, reduction="mean"), -ll.mean())
    torch.testing.assert_close(crf(emissions, tags, mask), -ll.sum())


# ---------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_tags,seq_len", SIZES)
def test_decode_equals_brute_force_argmax(seed, num_tags, seq_len):
    crf = make_crf(num_tags, seed)
    emissions = random_emissions(1, seq_len, num_tags, seed)
    paths, _ = brute_force(crf, emissions[0])
    assert crf.decode(emissions, full_mask(1, seq_len)).tolist() == [paths[0].tolist()]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_tags,seq_len", SIZES)
def test_nbest_equals_sorted_brute_force_list(seed, num_tags, seq_len):
    crf = make_crf(num_tags, seed)
    emissions = random_emissions(1, seq_len, num_tags, seed)
    paths, scores = brute_force(crf, emissions[0])
    for n in range(1, 6):
        got_paths, got_scores = crf.nbest(emissions, full_mask(1, seq_len), n)
        assert got_paths.shape == (1, n, seq_len) and got_scores.shape == (1, n)
        found = min(n, len(paths))
        assert got_paths[0, :found].tolist() == paths[:found].tolist()
        torch.testing.assert_close(got_scores[0, :found], scores[:found])


def test_nbest_pads_with_zero_paths_and_minus_inf_when_fewer_paths_exist():
    crf = make_crf(3, 0)
    emissions = random_emissions(2, 1, 3, 0)
    paths, scores = crf.nbest(emissions, full_mask(2, 1), 5)
    assert sorted(paths[:, :3, 0].tolist()[0]) == [0, 1, 2]
    assert paths[:, 3:].eq(0).all()
    assert torch.isfinite(scores[:, :3]).all()
    assert scores[:, 3:].eq(float("-inf")).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_nbest_scores_equal_score_of_returned_paths(seed):
    crf = make_crf(5, seed)
    emissions = random_emissions(4, 6, 5, seed)
    mask = lengths_mask([6, 3, 1, 5], 6)
    paths, scores = crf.nbest(emissions, mask, 4)
    for rank in range(4):
        torch.testing.assert_close(scores[:, rank], crf.score(emissions, paths[:, rank], mask))


@pytest.mark.parametrize("seed", SEEDS)
def test_nbest_paths_are_distinct_and_sorted_best_first(seed):
    crf = make_crf(4, seed)
    emissions = random_emissions(3, 5, 4, seed)
    mask = lengths_mask([5, 4, 2], 5)
    paths, scores = crf.nbest(emissions, mask, 10)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    for b in range(3):
        assert len({tuple(p) for p in paths[b].tolist()}) == 10


@pytest.mark.parametrize("seed", SEEDS)
def test_nbest_with_n_1_equals_decode(seed):
    crf = make_crf(5, seed)
    emissions = random_emissions(4, 7, 5, seed)
    mask = lengths_mask([7, 3, 1, 6], 7)
    paths, _ = crf.nbest(emissions, mask, 1)
    assert paths[:, 0].tolist() == crf.decode(emissions, mask).tolist()


# ---------------------------------------------------------------------------- batching and padding


def _batch(seed, num_tags=4, lengths=(5, 1, 3, 4, 2), seq_len=5):
    crf = make_crf(num_tags, seed)
    gen = torch.Generator().manual_seed(seed)
    emissions = random_emissions(len(lengths), seq_len, num_tags, seed)
    tags = torch.randint(num_tags, (len(lengths), seq_len), generator=gen)
    return crf, emissions, tags, lengths_mask(list(lengths), seq_len), lengths


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_log_likelihood_equals_unbatched(seed):
    crf, emissions, tags, mask, lengths = _batch(seed)
    batched = crf.log_likelihood(emissions, tags, mask)
    for b, n in enumerate(lengths):
        alone = crf.log_likelihood(emissions[b : b + 1, :n], tags[b : b + 1, :n], full_mask(1, n))
        torch.testing.assert_close(batched[b : b + 1], alone)


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_decode_equals_unbatched(seed):
    crf, emissions, _, mask, lengths = _batch(seed)
    batched = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        alone = crf.decode(emissions[b : b + 1, :n], full_mask(1, n))
        assert batched[b, :n].tolist() == alone[0].tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_batched_nbest_equals_unbatched(seed):
    crf, emissions, _, mask, lengths = _batch(seed)
    paths, scores = crf.nbest(emissions, mask, 4)
    for b, n in enumerate(lengths):
        alone_paths, alone_scores = crf.nbest(emissions[b : b + 1, :n], full_mask(1, n), 4)
        assert paths[b, :, :n].tolist() == alone_paths[0].tolist()
        torch.testing.assert_close(scores[b], alone_scores[0])


@pytest.mark.parametrize("garbage", [1e6, -1e30, float("inf"), float("nan")])
def test_padding_values_change_nothing(garbage):
    crf, emissions, tags, mask, _ = _batch(0)
    noisy = emissions.clone()
    noisy[~mask] = garbage
    noisy_tags = tags.masked_fill(~mask, 3)
    torch.testing.assert_close(
        crf.log_likelihood(noisy, noisy_tags, mask), crf.log_likelihood(emissions, tags, mask)
    )
    torch.testing.assert_close(crf.score(noisy, noisy_tags, mask), crf.score(emissions, tags, mask))
    assert crf.decode(noisy, mask).tolist() == crf.decode(emissions, mask).tolist()
    noisy_nbest, clean_nbest = crf.nbest(noisy, mask, 3), crf.nbest(emissions, mask, 3)
    assert noisy_nbest[0].tolist() == clean_nbest[0].tolist()
    torch.testing.assert_close(noisy_nbest[1], clean_nbest[1])


def test_padding_gets_zero_gradient_and_no_nan():
    crf, emissions, tags, mask, _ = _batch(0)
    emissions[~mask] = float("inf")
    emissions.requires_grad_(True)
    crf.neg_log_likelihood(emissions, tags, mask).backward()
    assert emissions.grad[~mask].eq(0).all()
    assert torch.isfinite(emissions.grad).all()
    assert torch.isfinite(crf.transitions.grad).all()


def test_decode_and_nbest_put_zero_at_padded_positions():
    crf, emissions, _, mask, _ = _batch(1)
    assert crf.decode(emissions, mask)[~mask].eq(0).all()
    paths, _ = crf.nbest(emissions, mask, 3)
    assert paths.masked_select(~mask.unsqueeze(1)).eq(0).all()


def test_empty_batch_gives_empty_results():
    crf = make_crf(3, 0)
    emissions = torch.zeros(0, 4, 3, dtype=torch.float64)
    mask = torch.zeros(0, 4, dtype=torch.bool)
    tags = torch.zeros(0, 4, dtype=torch.long)
    assert crf.log_likelihood(emissions, tags, mask).shape == (0,)
    assert crf.decode(emissions, mask).shape == (0, 4)
    assert crf.nbest(emissions, mask, 2)[0].shape == (0, 2, 4)


# ---------------------------------------------------------------------------- constraints


def test_transition_constraints_bio():
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed, start, end = transition_constraints(tags, "BIO")
    assert allowed.dtype == start.dtype == end.dtype == torch.bool
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    # into I-PER only from B-PER and I-PER; into I-LOC only from B-LOC and I-LOC
    assert allowed[:, 2].tolist() == [False, True, True, False, False]
    assert allowed[:, 4].tolist() == [False, False, False, True, True]
    # everything may be followed by O or a B-
    assert allowed[:, [0, 1, 3]].all()


def test_transition_constraints_bioes():
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC"]
    allowed, start, end = transition_constraints(tags, "BIOES")
    assert start.tolist() == [True, True, False, False, True, True, False]
    assert end.tolist() == [True, False, False, True, True, False, True]
    assert allowed[1].tolist() == [False, False, True, True, False, False, False]  # B-PER -> I-PER/E-PER
    assert allowed[2].tolist() == [False, False, True, True, False, False, False]  # I-PER -> I-PER/E-PER
    assert allowed[5].tolist() == [False, False, False, False, False, False, True]  # B-LOC -> E-LOC
    closed = [True, True, False, False, True, True, False]  # -> O, B-*, S-*
    for row in (0, 3, 4, 6):  # O, E-PER, S-PER, E-LOC
        assert allowed[row].tolist() == closed


def test_transition_constraints_leave_unprefixed_tags_unconstrained():
    tags = ["<pad>", "O", "B-PER", "I-PER"]
    for scheme in ("BIO", "BIOES"):
        allowed, start, end = transition_constraints(tags, scheme)
        assert allowed[0].all() and allowed[:, 0].all() and start[0] and end[0]
    allowed, _, _ = transition_constraints(tags, "BIO")
    assert not allowed[1, 3]  # O -> I-PER is still forbidden


def test_transition_constraints_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="scheme"):
        transition_constraints(BIO_TAGS, "BILOU")


def test_effective_transitions_add_penalty_exactly_at_forbidden_entries():
    constraints = transition_constraints(BIO_TAGS, "BIO")
    crf = make_crf(5, 0, constraints)
    start, trans, end = crf.effective_transitions()
    allowed, allowed_start, allowed_end = constraints
    expected_trans = crf.transitions + torch.where(allowed, 0.0, FORBIDDEN).double()
    torch.testing.assert_close(trans, expected_trans)
    expected_start = crf.start_transitions + torch.where(allowed_start, 0.0, FORBIDDEN).double()
    torch.testing.assert_close(start, expected_start)
    torch.testing.assert_close(end, crf.end_transitions)


def test_constraints_are_buffers_not_parameters():
    crf = CRF(5, *transition_constraints(BIO_TAGS, "BIO"))
    names = {name for name, _ in crf.named_parameters()}
    assert names == {"start_transitions", "end_transitions", "transitions"}
    assert {"allowed", "allowed_start", "allowed_end"} <= set(crf.state_dict())
    assert CRF(5).state_dict().keys() == crf.state_dict().keys()


def test_parameters_are_initialised_uniformly_in_minus_0_1_to_0_1():
    torch.manual_seed(0)
    crf = CRF(20)
    for param in crf.parameters():
        assert param.abs().max() <= 0.1 and param.std() > 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_constrained_decode_never_outputs_illegal_sequence(seed):
    crf = make_crf(5, seed, transition_constraints(BIO_TAGS, "BIO"))
    # emissions that strongly prefer I- tags everywhere
    emissions = random_emissions(8, 6, 5, seed, scale=3.0)
    emissions[:, :, [2, 4]] += 50.0
    mask = lengths_mask([6, 5, 4, 3, 2, 1, 6, 6], 6)
    decoded = crf.decode(emissions, mask)
    # n = 3: even a length-1 sentence has 3 legal paths (O, B-PER, B-LOC); beyond the legal
    # paths, nbest has to fill up with forbidden ones
    paths, _ = crf.nbest(emissions, mask, 3)
    for b, n in enumerate(mask.sum(1).tolist()):
        assert is_legal_bio(decoded[b, :n].tolist())
        assert all(is_legal_bio(p[:n]) for p in paths[b].tolist())


def test_constrained_decode_prefers_b_then_i_when_emissions_want_only_i():
    crf = CRF(5, *transition_constraints(BIO_TAGS, "BIO"))
    emissions = torch.zeros(1, 4, 5)
    emissions[:, :, 2] = 50.0  # I-PER everywhere
    assert crf.decode(emissions, full_mask(1, 4)).tolist() == [[1, 2, 2, 2]]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("seq_len", [1, 2, 3, 4])
def test_constrained_results_match_brute_force_over_legal_paths(seed, seq_len):
    crf = make_crf(5, seed, transition_constraints(BIO_TAGS, "BIO"))
    emissions = random_emissions(1, seq_len, 5, seed, scale=3.0)
    mask = full_mask(1, seq_len)
    paths, scores = brute_force(crf, emissions[0], keep=is_legal_bio)
    # forbidden paths contribute exp(-10000) = 0 to the partition function
    log_z = torch.logsumexp(scores, dim=0)
    ll = crf.log_likelihood(emissions, paths[:1], mask)
    torch.testing.assert_close(ll, (scores[0] - log_z).reshape(1))
    assert crf.decode(emissions, mask).tolist() == [paths[0].tolist()]
    n = min(5, len(paths))
    got_paths, got_scores = crf.nbest(emissions, mask, n)
    assert got_paths[0].tolist() == paths[:n].tolist()
    torch.testing.assert_close(got_scores[0], scores[:n])


# ---------------------------------------------------------------------------- errors


def _valid_inputs():
    return torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), full_mask(2, 3)


def test_rejects_mask_with_false_first_column():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    mask[1, :] = False
    for call in (
        lambda: crf.log_likelihood(emissions, tags, mask),
        lambda: crf.decode(emissions, mask),
        lambda: crf.nbest(emissions, mask, 2),
    ):
        with pytest.raises(ValueError, match=r"mask\[:, 0\]"):
            call()


def test_rejects_mask_that_is_not_left_aligned():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    mask[0, 1] = False
    with pytest.raises(ValueError, match="left-aligned"):
        crf.decode(emissions, mask)


def test_rejects_non_bool_mask():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    with pytest.raises(ValueError, match="bool"):
        crf.decode(emissions, mask.long())


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 1), (2, 3, 5)])
def test_rejects_emissions_with_wrong_dims(shape):
    crf = CRF(4)
    _, tags, mask = _valid_inputs()
    with pytest.raises(ValueError, match="emissions"):
        crf.log_likelihood(torch.zeros(shape), tags, mask)
    with pytest.raises(ValueError, match="emissions"):
        crf.decode(torch.zeros(shape), mask)


def test_rejects_integer_emissions():
    crf = CRF(4)
    _, _, mask = _valid_inputs()
    with pytest.raises(ValueError, match="float"):
        crf.decode(torch.zeros(2, 3, 4, dtype=torch.long), mask)


def test_rejects_tags_shape_mismatch():
    crf = CRF(4)
    emissions, _, mask = _valid_inputs()
    with pytest.raises(ValueError, match="tags"):
        crf.log_likelihood(emissions, torch.zeros(2, 2, dtype=torch.long), mask)


def test_rejects_float_tags():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    with pytest.raises(ValueError, match="integer"):
        crf.log_likelihood(emissions, tags.float(), mask)


def test_rejects_mask_shape_mismatch():
    crf = CRF(4)
    emissions, tags, _ = _valid_inputs()
    with pytest.raises(ValueError, match="mask"):
        crf.log_likelihood(emissions, tags, full_mask(2, 2))


def test_rejects_out_of_range_tags():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    tags[0, 1] = 4
    with pytest.raises(ValueError, match="tags"):
        crf.score(emissions, tags, mask)


@pytest.mark.parametrize("n", [0, -1])
def test_nbest_rejects_n_below_1(n):
    crf = CRF(4)
    emissions, _, mask = _valid_inputs()
    with pytest.raises(ValueError, match="n"):
        crf.nbest(emissions, mask, n)


def test_rejects_unknown_reduction():
    crf = CRF(4)
    emissions, tags, mask = _valid_inputs()
    with pytest.raises(ValueError, match="reduction"):
        crf.neg_log_likelihood(emissions, tags, mask, reduction="token_mean")


def test_rejects_constraints_of_wrong_shape_or_dtype():
    with pytest.raises(ValueError, match="allowed"):
        CRF(4, allowed=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed_start"):
        CRF(4, allowed_start=torch.ones(4))


# ---------------------------------------------------------------------------- gradients


def test_gradients_flow_to_parameters_and_emissions():
    torch.manual_seed(0)
    crf = CRF(5, *transition_constraints(BIO_TAGS, "BIO"))
    emissions = torch.randn(3, 4, 5, requires_grad=True)
    tags = torch.tensor([[1, 2, 0, 3], [0, 0, 0, 0], [3, 4, 4, 0]])
    loss = crf.neg_log_likelihood(emissions, tags, lengths_mask([4, 2, 3], 4), reduction="mean")
    loss.backward()
    for tensor in (emissions, crf.start_transitions, crf.end_transitions, crf.transitions):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    assert all(buffer.grad is None for buffer in crf.buffers())


def test_gradient_matches_finite_differences():
    crf = make_crf(3, 0)
    emissions = random_emissions(2, 3, 3, 0).requires_grad_(True)
    tags = torch.tensor([[0, 2, 1], [1, 1, 0]])
    mask = lengths_mask([3, 2], 3)
    # gradcheck on emissions; the parameters are module leaves, checked by central differences
    assert torch.autograd.gradcheck(lambda em: crf.neg_log_likelihood(em, tags, mask), (emissions,))
    crf.zero_grad()
    crf.neg_log_likelihood(emissions, tags, mask).backward()
    eps = 1e-6
    for param in (crf.start_transitions, crf.transitions, crf.end_transitions):
        flat = param.data.view(-1)
        for j in range(flat.numel()):
            old = flat[j].item()
            flat[j] = old + eps
            up = crf.neg_log_likelihood(emissions, tags, mask).item()
            flat[j] = old - eps
            down = crf.neg_log_likelihood(emissions, tags, mask).item()
            flat[j] = old
            assert abs((up - down) / (2 * eps) - param.grad.view(-1)[j].item()) < 1e-6


# ---------------------------------------------------------------------------- CPU forward-backward fast path


def test_fast_log_partition_and_gradients_equal_log_space_autograd_in_float32():
    torch.manual_seed(0)
    crf = CRF(5, *transition_constraints(BIO_TAGS, "BIO"))
    mask = lengths_mask([6, 3, 1, 5], 6)
    results = []
    for fn in (CRF._log_partition, CRF._log_partition_logspace):
        crf.zero_grad()
        emissions = (3 * torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
        start, trans, end = crf.effective_transitions()
        weights = torch.tensor([1.0, -2.0, 0.5, 3.0])  # a different upstream gradient per item
        log_z = fn(crf._clean(emissions, mask)[0], mask, start, trans, end)
        (log_z * weights).sum().backward()
        results.append([log_z.detach(), emissions.grad, crf.start_transitions.grad, crf.transitions.grad,
                        crf.end_transitions.grad])
    for fast, ref in zip(*results):
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_log_likelihood_falls_back_to_log_space_when_every_path_is_forbidden():
    # tag 0 is the only legal start and may go nowhere: every path of length 2 carries a -10000 penalty
    allowed = torch.tensor([[False, False], [True, True]])
    crf = make_crf(2, 0, (allowed, torch.tensor([True, False]), None))
    emissions = random_emissions(1, 2, 2, 0)
    tags = torch.tensor([[0, 1]])
    with pytest.raises(NoLegalPath):
        log_partition(emissions, full_mask(1, 2), *crf.effective_transitions())
    paths, scores = brute_force(crf, emissions[0])
    expected = crf.score(emissions, tags, full_mask(1, 2)) - torch.logsumexp(scores, dim=0)
    torch.testing.assert_close(crf.log_likelihood(emissions, tags, full_mask(1, 2)), expected)
