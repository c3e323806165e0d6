"""Bring your own model: Hugging Face token classifiers and encoders from a local folder (no model hub), fine-tuned
and analysed word by word like nerve's own taggers.

- ``config``: ``HFConfig`` (data, model folder, head, training) — the run's ``config.toml``;
- ``words``: words to sub-tokens and back (first sub-token, or the mean of a word's sub-tokens);
- ``model``: ``HFTagger`` — the encoder, a linear head (softmax or CRF) and named sites (``HookPoint`` modules
  fed by forward hooks on the real modules): ``layerN`` (layer N's output), ``ffnN`` (layer N's FFN activations),
  ``classifier_in`` (the head's input, word level);
- ``train``: fine-tuning into a run folder (identity, per-epoch checkpoints that resume, conlleval-exact scores);
- ``run``: loading such a run back and capturing a site's word-level activations.

Needs the optional extra ``nerve[hf]`` (transformers, tokenizers, safetensors); ``require`` says so in one line.
"""

from __future__ import annotations

from nerve.errors import NerveError


def require() -> None:
    """Import check of the optional extra: a one-line ``NerveError`` when transformers is missing."""
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise NerveError("Hugging Face models need the optional extra: pip install 'nerve[hf]' "
                         "(transformers, tokenizers, safetensors)") from None
    from transformers.utils import logging

    logging.set_verbosity_error()  # nerve reports its own progress and errors
    logging.disable_progress_bar()
