"""Scoring a run on a split: entity P/R/F1 (conlleval), token accuracy, per-tag accuracy."""

from __future__ import annotations

from nerve.metrics import entity_scores, per_tag_accuracy, token_accuracy


def score(gold: list[list[str]], pred: list[list[str]], tags: list[str] | None = None) -> dict:
    """All scores of ``pred`` against ``gold`` (lists of tag strings per sentence) as one dict."""
    ent = entity_scores(gold, pred)
    return {
        "f1": ent["f1"],
        "precision": ent["precision"],
        "recall": ent["recall"],
        "accuracy": token_accuracy(gold, pred),
        "per_tag_accuracy": per_tag_accuracy(gold, pred, tags),
        "per_type": ent["per_type"],
        "sentences": len(gold),
        "tokens": sum(len(s) for s in gold),
    }


def evaluate_run(run_dir: str, split: str = "test", device: str = "cpu") -> dict:
    """Load a run folder and score it on ``dev``, ``test`` or a CoNLL file path."""
    from nerve.data.prepare import encode_split
    from nerve.run import load_run, predict, read_split

    run = load_run(run_dir, device)
    path, sents = read_split(run, split)
    enc = run.indexer()
    items = encode_split(enc, sents, path, gold_ids=False)
    pred = predict(run.model, items, enc.extra_vectors(), run.cfg.train.eval_batch_size, run.device)
    itos = run.vocabs.tags.itos
    result = score([s.tags for s in sents], [[itos[i] for i in p] for p in pred], itos)
    result["split"] = str(path)
    return result


def format_scores(s: dict) -> str:
    """A plain-text table of the scores."""
    lines = [f"{s.get('split', '')}: {s['sentences']} sentences, {s['tokens']} tokens",
             f"entity  precision {s['precision']:.4f}  recall {s['recall']:.4f}  F1 {s['f1']:.4f}",
             f"token accuracy {s['accuracy']:.4f}", "", f"{'type':<16}{'prec':>8}{'rec':>8}{'F1':>8}{'support':>9}"]
    for typ, v in sorted(s["per_type"].items()):
        lines.append(f"{typ:<16}{v['precision']:>8.4f}{v['recall']:>8.4f}{v['f1']:>8.4f}{v['support']:>9}")
    lines += ["", f"{'tag':<16}{'accuracy':>9}"]
    for tag, acc in s["per_tag_accuracy"].items():
        lines.append(f"{tag:<16}{acc:>9.4f}")
    return "\n".join(lines)
