"""Any run folder: nerve's own taggers (``nerve.run``) and fine-tuned Hugging Face models (``nerve.hf.run``), told
apart by their config.toml, loaded by one call for the stages that read either (analysis, the API)."""

from __future__ import annotations

import os


def load_any_run(run_dir: str | os.PathLike, device: str | None = "cpu"):
    """``nerve.run.load_run`` for a nerve tagger's folder, ``nerve.hf.run.load_hf_run`` for a fine-tuned Hugging Face
    model's (a ``LoadedRun`` or a ``LoadedHFRun``: both have path, cfg, model, device, hashes; the latter's
    ``capture`` reads any of its sites)."""
    from nerve.hf.run import is_hf_run

    if is_hf_run(run_dir):
        from nerve.hf.run import load_hf_run

        return load_hf_run(run_dir, device)
    from nerve.run import load_run

    return load_run(run_dir, device)
