"""The linear-chain CRF in one place: the torch module with n-best Viterbi (``module``), the CPU forward-backward
log-partition (``forward_backward``), the compiled and batched Viterbi over concatenated sentences (``viterbi``),
each token's CRF context (``context``) and the sentence padding they share (``padding``)."""

from nerve.model.crf.context import crf_context
from nerve.model.crf.forward_backward import NoLegalPath, log_partition
from nerve.model.crf.module import CRF, FORBIDDEN, transition_constraints
from nerve.model.crf.padding import padded_tokens, sentence_lengths
from nerve.model.crf.viterbi import ViterbiLayout, torch_viterbi, viterbi

__all__ = [
    "CRF",
    "FORBIDDEN",
    "NoLegalPath",
    "ViterbiLayout",
    "crf_context",
    "log_partition",
    "padded_tokens",
    "sentence_lengths",
    "torch_viterbi",
    "transition_constraints",
    "viterbi",
]
