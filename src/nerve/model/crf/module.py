"""Linear-chain conditional random field with optional hard transition constraints and k-best Viterbi."""

import numbers

import torch
from torch import Tensor, nn

from nerve.model.crf.forward_backward import NoLegalPath, log_partition
from nerve.tags import allowed_transitions

#: Constant added to the score of a forbidden transition (start, end or tag-to-tag), as in NCRF++.
FORBIDDEN = -10000.0

_REDUCTIONS = ("sum", "mean", "none")
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def transition_constraints(tags: list[str], scheme: str) -> tuple[Tensor, Tensor, Tensor]:
    """Legal transitions for a tagging scheme (``nerve.tags.allowed_transitions``) as bool tensors
    ``(allowed (T, T) [from, to], allowed_start (T,), allowed_end (T,))``.

    Raises:
        ValueError: If ``scheme`` is neither BIO (IOB2) nor BIOES.
    """
    allowed, start, end = allowed_transitions(tags, scheme)
    return torch.from_numpy(allowed), torch.from_numpy(start), torch.from_numpy(end)


class CRF(nn.Module):
    """Linear-chain conditional random field (batch first).

    Scores a tag sequence ``y`` of length ``n`` given emission scores ``e`` as
    ``start[y_0] + sum_i e[i, y_i] + sum_i transitions[y_{i-1}, y_i] + end[y_{n-1}]``.
    Transitions marked as not allowed get the constant :data:`FORBIDDEN` (-10000) added, in the
    likelihood as well as in decoding, so the model neither learns nor predicts them.

    Masks are bool tensors of shape ``(batch_size, seq_len)``, left-aligned (each row is a run of
    ``True`` followed by ``False``), with ``mask[:, 0]`` all ``True``. Values of emissions and tags
    at padded positions are ignored.

    Args:
        num_tags: Number of tags.
        allowed: Optional bool tensor ``(num_tags, num_tags)`` indexed ``[from, to]``; ``False``
            marks a forbidden transition.
        allowed_start: Optional bool tensor ``(num_tags,)``; ``False`` marks a tag that may not
            start a sequence.
        allowed_end: Optional bool tensor ``(num_tags,)``; ``False`` marks a tag that may not end
            a sequence.

    Attributes:
        start_transitions: Parameter ``(num_tags,)``, score of starting with each tag.
        end_transitions: Parameter ``(num_tags,)``, score of ending with each tag.
        transitions: Parameter ``(num_tags, num_tags)``, score of a transition ``[from, to]``.
        allowed, allowed_start, allowed_end: Bool buffers with the constraints (all ``True``
            when not given).
    """

    def __init__(self, num_tags: int, allowed: Tensor | None = None, allowed_start: Tensor | None = None,
                 allowed_end: Tensor | None = None) -> None:
        if not isinstance(num_tags, int) or num_tags <= 0:
            raise ValueError(f"expected a positive int num_tags, got {num_tags!r}")
        super().__init__()
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))
        self.register_buffer("allowed", self._constraint(allowed, (num_tags, num_tags), "allowed"))
        self.register_buffer("allowed_start", self._constraint(allowed_start, (num_tags,), "allowed_start"))
        self.register_buffer("allowed_end", self._constraint(allowed_end, (num_tags,), "allowed_end"))
        self.reset_parameters()

    @staticmethod
    def _constraint(value: Tensor | None, shape: tuple[int, ...], name: str) -> Tensor:
        if value is None:
            return torch.ones(shape, dtype=torch.bool)
        value = torch.as_tensor(value)
        if value.dtype != torch.bool:
            raise ValueError(f"expected {name} to be a bool tensor, got dtype {value.dtype}")
        if tuple(value.shape) != shape:
            raise ValueError(f"expected {name} of shape {shape}, got {tuple(value.shape)}")
        return value.detach().clone()

    def reset_parameters(self) -> None:
        """Initialise all parameters uniformly in (-0.1, 0.1)."""
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def effective_transitions(self) -> tuple[Tensor, Tensor, Tensor]:
        """Transition scores with the constraint penalties applied.

        Returns:
            ``(start, transitions, end)`` of shapes ``(num_tags,)``, ``(num_tags, num_tags)``
            (indexed ``[from, to]``) and ``(num_tags,)``: the parameters plus -10000 at every
            forbidden entry. Differentiable with respect to the parameters.
        """
        start = self.start_transitions + (~self.allowed_start).to(self.start_transitions.dtype) * FORBIDDEN
        trans = self.transitions + (~self.allowed).to(self.transitions.dtype) * FORBIDDEN
        end = self.end_transitions + (~self.allowed_end).to(self.end_transitions.dtype) * FORBIDDEN
        return start, trans, end

    # ------------------------------------------------------------------ public API

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of given tag sequences.

        Args:
            emissions: Float tensor ``(batch_size, seq_len, num_tags)``.
            tags: Integer tensor ``(batch_size, seq_len)``; values at padded positions are ignored.
            mask: Bool tensor ``(batch_size, seq_len)``.

        Returns:
            Tensor ``(batch_size,)``: the score of each tag sequence.

        Raises:
            ValueError: On a bad shape, dtype, tag value or mask.
        """
        self._validate(emissions, mask, tags)
        emissions, tags = self._clean(emissions, mask, tags)
        start, trans, end = self.effective_transitions()
        return self._score(emissions, tags, mask, start, trans, end)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Conditional log-likelihood ``log p(tags | emissions)`` of each sequence.

        Args:
            emissions: Float tensor ``(batch_size, seq_len, num_tags)``.
            tags: Integer tensor ``(batch_size, seq_len)``; values at padded positions are ignored.
            mask: Bool tensor ``(batch_size, seq_len)``.

        Returns:
            Tensor ``(batch_size,)``.

        Raises:
            ValueError: On a bad shape, dtype, tag value or mask.
        """
        self._validate(emissions, mask, tags)
        emissions, tags = self._clean(emissions, mask, tags)
        start, trans, end = self.effective_transitions()
        numerator = self._score(emissions, tags, mask, start, trans, end)
        denominator = self._log_partition(emissions, mask, start, trans, end)
        return numerator - denominator

    def neg_log_likelihood(
        self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "sum"
    ) -> Tensor:
        """Negative log-likelihood loss.

        Args:
            emissions: Float tensor ``(batch_size, seq_len, num_tags)``.
            tags: Integer tensor ``(batch_size, seq_len)``.
            mask: Bool tensor ``(batch_size, seq_len)``.
            reduction: ``"sum"`` over the batch, ``"mean"`` over the batch, or ``"none"``.

        Returns:
            Scalar tensor, or ``(batch_size,)`` for ``reduction="none"``.

        Raises:
            ValueError: On a bad reduction, shape, dtype, tag value or mask.
        """
        if reduction not in _REDUCTIONS:
            raise ValueError(f"expected reduction to be one of {_REDUCTIONS}, got {reduction!r}")
        nll = -self.log_likelihood(emissions, tags, mask)
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        return nll

    def forward(
        self, emissions: Tensor, tags: Tensor, mask: Tensor, reduction: str = "sum"
    ) -> Tensor:
        """Same as :meth:`neg_log_likelihood`."""
        return self.neg_log_likelihood(emissions, tags, mask, reduction)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Best tag sequence of each item (Viterbi).

        Args:
            emissions: Float tensor ``(batch_size, seq_len, num_tags)``.
            mask: Bool tensor ``(batch_size, seq_len)``.

        Returns:
            Long tensor ``(batch_size, seq_len)``: the best path; 0 where ``mask`` is ``False``.

        Raises:
            ValueError: On a bad shape, dtype or mask.
        """
        self._validate(emissions, mask)
        emissions, _ = self._clean(emissions, mask)
        start, trans, end = self.effective_transitions()
        batch_size, seq_len, num_tags = emissions.shape

        em = emissions.transpose(0, 1)  # shape: (seq_len, batch_size, num_tags)
        step_mask = mask.transpose(0, 1).unsqueeze(2)  # shape: (seq_len, batch_size, 1)
        identity = torch.arange(num_tags, device=emissions.device).expand(batch_size, num_tags)

        # shape: (batch_size, num_tags)
        score = start + em[0]
        backpointers = []
        for i in range(1, seq_len):
            # shape: (batch_size, num_tags, num_tags) indexed [batch, from, to]
            candidates = score.unsqueeze(2) + trans
            best, best_prev = candidates.max(dim=1)
            score = torch.where(step_mask[i], best + em[i], score)
            # at padded steps a tag "comes from" itself, so backtracking passes through unchanged
            backpointers.append(torch.where(step_mask[i], best_prev, identity))
        score = score + end

        paths = emissions.new_zeros((seq_len, batch_size), dtype=torch.long)
        # shape: (batch_size,)
        current = score.argmax(dim=1)
        paths[seq_len - 1] = current
        for i in range(seq_len - 2, -1, -1):
            current = backpointers[i].gather(1, current.unsqueeze(1)).squeeze(1)
            paths[i] = current
        return paths.transpose(0, 1).masked_fill(~mask, 0)

    @torch.no_grad()
    def nbest(self, emissions: Tensor, mask: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """The ``n`` highest-scoring tag sequences of each item (k-best Viterbi), best first.

        Args:
            emissions: Float tensor ``(batch_size, seq_len, num_tags)``.
            mask: Bool tensor ``(batch_size, seq_len)``.
            n: Number of paths, at least 1.

        Returns:
            ``(paths, scores)``: long tensor ``(batch_size, n, seq_len)`` (0 where ``mask`` is
            ``False``) and float tensor ``(batch_size, n)`` with each path's unnormalised score
            (as :meth:`score` gives it, up to rounding). If an item has fewer than ``n`` distinct
            paths, the remaining rows are all-zero paths with score ``-inf``. Forbidden paths
            (scored with the -10000 penalty) are returned only once the legal ones run out.

        Raises:
            ValueError: On a bad ``n``, shape, dtype or mask.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"expected n to be an int >= 1, got {n!r}")
        n = int(n)
        self._validate(emissions, mask)
        emissions, _ = self._clean(emissions, mask)
        start, trans, end = self.effective_transitions()
        emissions = emissions.to(torch.promote_types(emissions.dtype, trans.dtype))
        batch_size, seq_len, num_tags = emissions.shape
        k = n
        device = emissions.device

        em = emissions.transpose(0, 1)  # shape: (seq_len, batch_size, num_tags)
        step_mask = mask.transpose(0, 1)[:, :, None, None]  # shape: (seq_len, batch_size, 1, 1)
        # backpointers of padded steps: each (tag, rank) comes from itself
        # shape: (batch_size, num_tags, k)
        same_tag = torch.arange(num_tags, device=device)[:, None].expand(batch_size, num_tags, k)
        same_rank = torch.arange(k, device=device).expand(batch_size, num_tags, k)

        # score[b, t, r]: r-th best score of a prefix ending in tag t; -inf where none exists
        # shape: (batch_size, num_tags, k)
        score = emissions.new_full((batch_size, num_tags, k), float("-inf"))
        score[:, :, 0] = start + em[0]
        prev_tags, prev_ranks = [], []
        for i in range(1, seq_len):
            # shape: (batch_size, num_tags * k, num_tags) indexed [batch, (from, rank), to]
            candidates = (score.unsqueeze(3) + trans[:, None, :]).reshape(batch_size, num_tags * k, num_tags)
            # shape: (batch_size, k, num_tags)
            best, best_idx = candidates.topk(k, dim=1)
            best = best.transpose(1, 2) + em[i].unsqueeze(2)  # shape: (batch_size, num_tags, k)
            best_idx = best_idx.transpose(1, 2)
            score = torch.where(step_mask[i], best, score)
            prev_tags.append(torch.where(step_mask[i], best_idx // k, same_tag))
            prev_ranks.append(torch.where(step_mask[i], best_idx % k, same_rank))

        # shape: (batch_size, num_tags * k); num_tags * k >= n, so topk always finds n entries
        final = (score + end.unsqueeze(1)).reshape(batch_size, num_tags * k)
        scores, idx = final.topk(n, dim=1)  # shape: (batch_size, n)
        tag, rank = idx // k, idx % k
        paths = emissions.new_zeros((seq_len, batch_size, n), dtype=torch.long)
        paths[seq_len - 1] = tag
        for i in range(seq_len - 2, -1, -1):
            flat = tag * k + rank
            tag = prev_tags[i].reshape(batch_size, num_tags * k).gather(1, flat)
            rank = prev_ranks[i].reshape(batch_size, num_tags * k).gather(1, flat)
            paths[i] = tag
        paths = paths.permute(1, 2, 0)  # shape: (batch_size, n, seq_len)

        # entries with score -inf are not paths (fewer than n exist): return them as all zeros
        exists = scores > float("-inf")  # shape: (batch_size, n)
        paths = paths.masked_fill(~(exists.unsqueeze(2) & mask.unsqueeze(1)), 0)
        return paths, scores

    # ------------------------------------------------------------------ internals

    def _validate(self, emissions: Tensor, mask: Tensor, tags: Tensor | None = None) -> None:
        if not isinstance(emissions, Tensor):
            raise ValueError(f"expected emissions to be a tensor, got {type(emissions).__name__}")
        if emissions.dim() != 3:
            raise ValueError(
                "expected emissions to be a 3-d tensor (batch_size, seq_len, num_tags), "
                f"got shape {tuple(emissions.shape)}"
            )
        if not emissions.is_floating_point():
            raise ValueError(f"expected emissions to be a float tensor, got dtype {emissions.dtype}")
        batch_size, seq_len, num_tags = emissions.shape
        if num_tags != self.num_tags:
            raise ValueError(f"expected last dimension of emissions to be {self.num_tags}, got {num_tags}")
        if seq_len < 1:
            raise ValueError("expected emissions with seq_len >= 1, got 0")
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise ValueError(
                "expected mask to be a bool tensor, got "
                + (f"dtype {mask.dtype}" if isinstance(mask, Tensor) else repr(type(mask)))
            )
        if mask.shape != emissions.shape[:2]:
            raise ValueError(
                f"expected mask of shape {tuple(emissions.shape[:2])} (batch_size, seq_len), "
                f"got {tuple(mask.shape)}"
            )
        if tags is not None:
            if not isinstance(tags, Tensor) or tags.dtype not in _INT_DTYPES:
                raise ValueError(
                    "expected tags to be an integer tensor, got "
                    + (f"dtype {tags.dtype}" if isinstance(tags, Tensor) else repr(type(tags)))
                )
            if tags.shape != emissions.shape[:2]:
                raise ValueError(
                    f"expected tags of shape {tuple(emissions.shape[:2])} (batch_size, seq_len), "
                    f"got {tuple(tags.shape)}"
                )
            if batch_size:
                valid_tags = tags.masked_fill(~mask, 0)
                if bool(((valid_tags < 0) | (valid_tags >= num_tags)).any()):
                    raise ValueError(f"expected tags in [0, {num_tags}) at unmasked positions")
        if batch_size:
            if not bool(mask[:, 0].all()):
                raise ValueError("expected mask[:, 0] to be all True (drop empty sequences first)")
            if seq_len > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
                raise ValueError("expected a left-aligned mask (each row a run of True, then False)")

    @staticmethod
    def _clean(emissions: Tensor, mask: Tensor, tags: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Zero emissions and tags at padded positions, so that garbage there (even inf/nan) is inert."""
        emissions = emissions.masked_fill(~mask.unsqueeze(2), 0.0)
        if tags is not None:
            tags = tags.long().masked_fill(~mask, 0)
        return emissions, tags

    @staticmethod
    def _score(
        emissions: Tensor, tags: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
    ) -> Tensor:
        # emissions: (batch_size, seq_len, num_tags), zero at padding
        # tags: (batch_size, seq_len), zero at padding
        # shape: (batch_size,)
        score = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).sum(dim=1)
        score = score + start[tags[:, 0]]
        if tags.size(1) > 1:
            # shape: (batch_size, seq_len - 1)
            steps = trans[tags[:, :-1], tags[:, 1:]]
            score = score + steps.masked_fill(~mask[:, 1:], 0.0).sum(dim=1)
        last = mask.sum(dim=1) - 1  # shape: (batch_size,)
        last_tags = tags.gather(1, last.unsqueeze(1)).squeeze(1)
        return score + end[last_tags]

    @staticmethod
    def _log_partition(
        emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
    ) -> Tensor:
        # on CPU: scaled forward-backward in float64 with analytic gradients (several times faster to train);
        # the log-space recursion below is the reference, and the fallback when some item has no legal path
        if emissions.device.type == "cpu" and emissions.size(0):
            try:
                return log_partition(emissions, mask, start, trans, end)
            except NoLegalPath:
                pass
        return CRF._log_partition_logspace(emissions, mask, start, trans, end)

    @staticmethod
    def _log_partition_logspace(
        emissions: Tensor, mask: Tensor, start: Tensor, trans: Tensor, end: Tensor
    ) -> Tensor:
        # forward algorithm; emissions: (batch_size, seq_len, num_tags), zero at padding
        seq_len = emissions.size(1)
        em = emissions.transpose(0, 1)  # shape: (seq_len, batch_size, num_tags)
        step_mask = mask.transpose(0, 1).unsqueeze(2)  # shape: (seq_len, batch_size, 1)
        # alpha[b, t]: log-sum of the scores of all prefixes ending in tag t
        # shape: (batch_size, num_tags)
        alpha = start + em[0]
        for i in range(1, seq_len):
            # shape: (batch_size, num_tags, num_tags) indexed [batch, from, to] -> (batch_size, num_tags)
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + em[i]
            # padded steps keep alpha unchanged, so it ends at each sequence's last position
            alpha = torch.where(step_mask[i], nxt, alpha)
        # shape: (batch_size,)
        return torch.logsumexp(alpha + end, dim=1)
