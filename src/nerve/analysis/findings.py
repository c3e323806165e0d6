"""The published findings of Xin, Lin & Yu (EMNLP 2019), kept as data in rules.toml, checked on analysed runs."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from nerve.io import atomic_write_text
from nerve.tags import entity_types

DEFAULT_RULES = resources.files("nerve.analysis") / "rules.toml"
KINDS = {  # kind -> keys a clause of that kind needs
    "compare": ("matrix", "a", "b", "op", "value"),
    "is_most": ("matrix", "a", "b"),
    "some_exceeds": ("matrix", "a", "b", "candidates"),
    "ablation_vs_random": ("a", "k"),
    "ablation_selectivity": ("a", "k"),
}
MATRICES = ("corr", "similarity")
QUANTIFIERS = ("all", "most", "any")
NA = "not applicable"
_VAR = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class RunEvidence:
    """What the findings read of one run: its tags (T,), the tag x tag matrices corr (sensitivity correlation)
    and similarity (weight cosine), float (T, T) indexed like tags or None, and its ablation rows or None."""

    tags: list[str]
    name: str = ""
    corr: np.ndarray | None = None
    similarity: np.ndarray | None = None
    ablation: np.ndarray | None = None

    @classmethod
    def of(cls, run) -> RunEvidence:
        """The evidence of an ``AnalysedRun`` (its matrices computed from its s and W)."""
        from nerve.analysis.matrices import corr_matrix, similarity_matrix

        return cls(list(run.tags), run.name, corr_matrix(run.s), similarity_matrix(run.W), run.ablation)

    def matrix(self, name: str) -> np.ndarray | None:
        M = self.corr if name == "corr" else self.similarity
        return None if M is None else np.asarray(M, dtype=np.float64)


def load_rules(path: str | os.PathLike | None = None) -> list[dict]:
    """The findings of a rules file (default: the packaged ``rules.toml``), checked.

    The format (finding and clause keys, tag patterns, rule kinds) is described in the comment block
    at the top of the packaged rules.toml.

    Returns:
        list of dicts with number, id, description and clause (list of clause dicts).

    Raises:
        ValueError: invalid TOML, or a finding or clause lacks a key or names an unknown kind, matrix,
            op or quantifier.
    """
    src = DEFAULT_RULES if path is None else Path(path)
    data = tomllib.loads(src.read_text(encoding="utf-8"))
    rules = data.get("finding")
    if not isinstance(rules, list) or not rules:
        raise ValueError(f"{src}: expected one or more [[finding]] tables")
    seen = set()
    for r in rules:
        where = f"{src}: finding {r.get('id', '?')}"
        for key in ("number", "id", "description", "clause"):
            if key not in r:
                raise ValueError(f"{where}: expected key {key!r}")
        if r["id"] in seen:
            raise ValueError(f"{where}: expected a unique id")
        seen.add(r["id"])
        for c in r["clause"]:
            if c.get("kind") not in KINDS:
                raise ValueError(f"{where}: expected kind in {', '.join(KINDS)}, got {c.get('kind')!r}")
            missing = [k for k in KINDS[c["kind"]] if k not in c]
            if missing:
                raise ValueError(f"{where}: kind {c['kind']} expects keys {', '.join(missing)}")
            if "matrix" in KINDS[c["kind"]] and c["matrix"] not in MATRICES:
                raise ValueError(f"{where}: expected matrix in {', '.join(MATRICES)}, got {c['matrix']!r}")
            if c["kind"] == "compare" and c["op"] not in (">", "<"):
                raise ValueError(f"{where}: expected op '>' or '<', got {c['op']!r}")
            if c.get("quantifier", "all") not in QUANTIFIERS:
                raise ValueError(f"{where}: expected quantifier in {', '.join(QUANTIFIERS)}, got {c['quantifier']!r}")
            if c.get("types", "all") != "all" and not isinstance(c["types"], list):
                raise ValueError(f"{where}: expected types = \"all\" or a list of type names")
    return rules


# ----------------------------------------------------------------------------------------------- cases


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _expand(pattern: str, binding: dict) -> str:
    return _VAR.sub(lambda m: binding[m.group(1)], pattern)


def _cases(clause: dict, tags: list[str]) -> tuple[list[tuple[dict, tuple]], list[dict], str | None]:
    """(cases as (binding, tag tuple), skipped cases, reason the clause is not applicable or None)."""
    types = entity_types(tags)
    pats = [clause["a"]] + ([clause["b"]] if "b" in clause else [])
    names = list(dict.fromkeys(v for p in pats if p != "*" for v in _VAR.findall(p)))
    named = clause.get("types", "all")
    if named != "all":
        absent = [t for t in named if t not in types]
        if absent:
            return [], [], f"needs entity types {', '.join(absent)}"
    domain = [t for t in (types if named == "all" else named) if t not in clause.get("except", [])]
    combos = (itertools.combinations if clause.get("unordered") else itertools.permutations)(domain, len(names))
    cases, skipped = [], []
    for combo in combos:
        binding = dict(zip(names, combo))
        for a in (tags if clause["a"] == "*" else [_expand(clause["a"], binding)]):
            bs = [None] if "b" not in clause else ([t for t in tags if t != a] if clause["b"] == "*"
                                                   else [_expand(clause["b"], binding)])
            for b in bs:
                tt = (a,) if b is None else (a, b)
                missing = [t for t in tt if t not in tags]
                if missing:
                    skipped.append({"tags": list(tt), "reason": f"no tag {', '.join(missing)}"})
                else:
                    cases.append((binding, tt))
    if named != "all" and skipped:
        absent = sorted({t for s in skipped for t in s["tags"] if t not in tags})
        return [], [], f"needs tags {', '.join(absent)}"
    if not cases:
        reason = skipped[0]["reason"] if skipped else f"no case (entity types present: {', '.join(types) or 'none'})"
        return [], skipped, reason
    return cases, skipped, None


def _top(M: np.ndarray, i: int) -> int | None:
    """Index of the largest finite value in row i other than the diagonal, or None."""
    row = np.array(M[i], dtype=np.float64)
    row[i] = np.nan
    return None if not np.any(np.isfinite(row)) else int(np.nanargmax(row))


def _matrix_case(clause: dict, M: np.ndarray, tags: list[str], binding: dict, tt: tuple) -> dict:
    """Evidence of one case of a matrix clause; holds is None when a value it needs is NaN."""
    ix = {t: i for i, t in enumerate(tags)}
    a, b = tt
    v = _num(M[ix[a], ix[b]])
    ev = {"tags": [a, b], "value": v, "holds": None}
    if v is None:
        return ev | {"reason": "NaN"}
    kind = clause["kind"]
    if kind == "compare":
        ev["holds"] = bool(v > clause["value"] if clause["op"] == ">" else v < clause["value"])
    elif kind == "is_most":
        checks = []
        for x, y, label in ((a, b, "a"), (b, a, "b"))[: 2 if clause.get("both_ways") else 1]:
            top = _top(M, ix[x])
            ev[f"most_similar_to_{label}"] = None if top is None else tags[top]
            ev[f"most_similar_to_{label}_value"] = None if top is None else _num(M[ix[x], top])
            checks.append(top is not None and tags[top] == y)
        ev["holds"] = (not any(checks)) if clause.get("negate") else all(checks)
    elif kind == "some_exceeds":
        (free,) = [n for n in _VAR.findall(clause["candidates"]) if n not in binding] or [None]
        taken = set(binding.values())
        cands = [c for t in entity_types(tags) if t not in taken
                 if (c := _expand(clause["candidates"], binding | ({free: t} if free else {}))) in ix and c not in tt]
        vals = [(_num(M[ix[a], ix[c]]), c) for c in cands]
        vals = [(x, c) for x, c in vals if x is not None]
        if not vals:
            return ev | {"reason": "no candidate tag"}
        best, c = max(vals)
        ev.update({"best_candidate": c, "best_value": best, "holds": bool(best > v)})
    return ev


def _acc(rows: np.ndarray, target: str, selection: str, k: int, eval_tag: str | None = None) -> np.ndarray:
    """Accuracies of ``eval_tag`` (default: the target) at k, ordered by draw."""
    m = (rows["target_tag"] == target) & (rows["selection"] == selection) & (rows["k"] == k)
    m &= rows["eval_tag"] == (target if eval_tag is None else eval_tag)
    r = rows[m]
    return r["accuracy"][np.argsort(r["draw"], kind="stable")]


def _ablation_case(clause: dict, rows: np.ndarray, tags: list[str], target: str, k: int) -> dict:
    """Evidence of one target tag of an ablation clause (drop = accuracy at k = 0 minus at k).

    ablation_vs_random: effect = top drop - mean random drop over draws; percentile bootstrap interval of
    the effect from ``resamples`` resamplings of the draws (``seed``); holds if effect > 0 and the
    interval's lower end > 0. ablation_selectivity: holds if the target's top-k drop exceeds the mean
    drop of the other tags (on the same ablation); holds_vs_max compares with the largest other drop.
    """
    ev = {"tags": [target], "k": k, "holds": None}
    base = _acc(rows, target, "top", 0)
    base = base if base.size else _acc(rows, target, "random", 0)[:1]
    if not base.size or not np.isfinite(base[0]):
        return ev | {"reason": "no accuracy at k = 0 (tag absent from the gold labels?)"}
    top = _acc(rows, target, "top", k)
    if not top.size:
        return ev | {"reason": f"no top-{k} row"}
    top_drop = float(base[0] - top[0])
    if clause["kind"] == "ablation_vs_random":
        rnd = base[0] - _acc(rows, target, "random", k)
        rnd = rnd[np.isfinite(rnd)]
        if not rnd.size:
            return ev | {"reason": "no random draws"}
        rng = np.random.default_rng(int(clause.get("seed", 0)))
        boot = top_drop - rnd[rng.integers(0, rnd.size, size=(int(clause.get("resamples", 2000)), rnd.size))].mean(1)
        alpha = (1.0 - float(clause.get("level", 0.95))) / 2 * 100
        lo, hi = np.percentile(boot, [alpha, 100 - alpha])
        effect = top_drop - float(rnd.mean())
        return ev | {"baseline": float(base[0]), "top_drop": top_drop, "random_mean_drop": float(rnd.mean()),
                     "effect": effect, "ci": [float(lo), float(hi)], "n_draws": int(rnd.size),
                     "holds": bool(effect > 0 and lo > 0)}
    drops = {}
    for t in tags:
        if t != target:
            a0, ak = _acc(rows, target, "top", 0, t), _acc(rows, target, "top", k, t)
            if a0.size and ak.size and np.isfinite(a0[0] - ak[0]):
                drops[t] = float(a0[0] - ak[0])
    if not drops:
        return ev | {"reason": "no other tag with an accuracy"}
    worst = max(drops, key=drops.get)
    mean = float(np.mean(list(drops.values())))
    return ev | {"own_drop": top_drop, "others_mean_drop": mean, "others_max_drop": drops[worst],
                 "others_max_tag": worst, "holds_vs_max": bool(top_drop > drops[worst]), "holds": bool(top_drop > mean)}


def _quantify(quantifier: str, n_hold: int, n: int) -> bool:
    return {"all": n_hold == n, "most": n_hold > n / 2, "any": n_hold >= 1}[quantifier]


def evaluate_clause(clause: dict, run: RunEvidence) -> dict:
    """One clause on one run; see ``evaluate_rule``."""
    tags = [str(t) for t in run.tags]
    out = {"kind": clause["kind"], "quantifier": clause.get("quantifier", "all")}
    if "matrix" in clause:
        out["matrix"] = clause["matrix"]
        M = run.matrix(clause["matrix"])
        if M is None:
            return out | {"status": NA, "holds": None, "reason": f"no {clause['matrix']} matrix (no s / W)"}
    else:
        rows = run.ablation
        if rows is None or not len(rows):
            return out | {"status": NA, "holds": None, "reason": "no ablation rows"}
        k = int(min(clause["k"], rows["k"].max()))
        if k < 1:
            return out | {"status": NA, "holds": None, "reason": "no ablation with k >= 1"}
        out["k"] = k
        rows = rows[(rows["k"] == 0) | (rows["k"] == k)]
        by_target = {t: rows[rows["target_tag"] == t] for t in tags}
    cases, skipped, reason = _cases(clause, tags)
    if reason:
        return out | {"status": NA, "holds": None, "reason": reason, "skipped": skipped}
    evidence = []
    for binding, tt in cases:
        ev = (_matrix_case(clause, M, tags, binding, tt) if "matrix" in clause
              else _ablation_case(clause, by_target[tt[0]], tags, tt[0], k))
        evidence.append({"key": "/".join(tt), "binding": binding} | ev)
    done = [e for e in evidence if e["holds"] is not None]
    skipped += [{"tags": e["tags"], "reason": e["reason"]} for e in evidence if e["holds"] is None]
    if not done:
        return out | {"status": NA, "holds": None, "reason": "every case skipped", "skipped": skipped}
    n_hold = sum(e["holds"] for e in done)
    holds = _quantify(out["quantifier"], n_hold, len(done))
    return out | {"status": "holds" if holds else "fails", "holds": holds, "reason": None, "n_cases": len(done),
                  "n_holding": int(n_hold), "cases": done, "skipped": skipped}


def evaluate_rule(rule: dict, run: RunEvidence) -> dict:
    """One finding on one run.

    Args:
        rule: a finding from ``load_rules``.
        run: the run's evidence (``RunEvidence.of`` an analysed run, or built by hand).

    Returns:
        dict: run, status ("holds", "fails" or "not applicable"), holds (bool or None), reason,
        clauses (per clause: kind, status, holds, n_cases, n_holding, cases with their evidence
        numbers, skipped cases). The finding holds when every clause holds; it is not applicable
        when any clause is.
    """
    clauses = [evaluate_clause(c, run) for c in rule["clause"]]
    na = [c for c in clauses if c["status"] == NA]
    holds = None if na else all(c["holds"] for c in clauses)
    return {"run": run.name, "status": NA if na else ("holds" if holds else "fails"), "holds": holds,
            "reason": "; ".join(c["reason"] for c in na) or None, "clauses": clauses}


def _sign_p(holds: int, applicable: int) -> float | None:
    return float(binomtest(holds, applicable, 0.5).pvalue) if applicable else None


def _headline(e: dict) -> float:
    """The number a case turns on: the matrix value, the ablation effect, or own minus mean other drop."""
    if "value" in e:
        return e["value"]
    return e["effect"] if "effect" in e else e["own_drop"] - e["others_mean_drop"]


def _summary(per_run: list[dict]) -> str:
    """One line: per run, the status, holding / applicable cases per clause and up to 3 failing cases."""
    parts = []
    for r in per_run:
        if r["status"] == NA:
            parts.append(f"{r['run']}: n/a ({r['reason']})")
            continue
        counts = ", ".join(f"{c['n_holding']}/{c['n_cases']}" for c in r["clauses"])
        fails = [f"{e['key']} {_headline(e):+.3f}" for c in r["clauses"] for e in c["cases"] if not e["holds"]][:3]
        parts.append(f"{r['run']}: {r['status']} {counts}" + (f" (failing cases: {', '.join(fails)})" if fails else ""))
    return "; ".join(parts)


def evaluate_findings(runs: list[dict], rules_path: str | os.PathLike | None = None) -> list[dict]:
    """Every finding of the rules file on every run, with a sign test across runs.

    Args:
        runs: ``RunEvidence`` or analysed runs (``load_run_analysis``), unnamed ones named run0, run1, ...
        rules_path: rules file; default the packaged ``rules.toml``.

    Returns:
        One JSON-ready dict per finding: number, id, description, n_runs, applicable_runs,
        holds_runs, sign_test_p (two-sided ``binomtest(holds_runs, applicable_runs, 0.5)``, None
        when no run applies), cases (per case key, e.g. "B-LOC/I-LOC", of each clause:
        applicable_runs, holds_runs, sign_test_p), evidence_summary (one line), runs (``evaluate_rule``).
    """
    rules = load_rules(rules_path)
    runs = [r if isinstance(r, RunEvidence) else RunEvidence.of(r) for r in runs]
    runs = [r if r.name else dataclasses.replace(r, name=f"run{i}") for i, r in enumerate(runs)]
    out = []
    for rule in rules:
        per_run = [evaluate_rule(rule, r) for r in runs]
        applicable = [r for r in per_run if r["status"] != NA]
        n_holds = sum(bool(r["holds"]) for r in applicable)
        cases: dict[str, dict] = {}
        for r in per_run:
            for ci, c in enumerate(r["clauses"]):
                for e in c.get("cases", []):
                    key = e["key"] if len(rule["clause"]) == 1 else f"{ci + 1}:{e['key']}"
                    d = cases.setdefault(key, {"applicable_runs": 0, "holds_runs": 0})
                    d["applicable_runs"] += 1
                    d["holds_runs"] += int(e["holds"])
        for d in cases.values():
            d["sign_test_p"] = _sign_p(d["holds_runs"], d["applicable_runs"])
        out.append({"number": rule["number"], "id": rule["id"], "description": rule["description"],
                    "n_runs": len(per_run), "applicable_runs": len(applicable), "holds_runs": n_holds,
                    "sign_test_p": _sign_p(n_holds, len(applicable)), "cases": cases,
                    "evidence_summary": _summary(per_run), "runs": per_run})
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return _num(x)
    return x


def write_findings(path: str | os.PathLike, results: list[dict]) -> None:
    """Write ``evaluate_findings`` results to ``path`` (findings.json: a JSON list, NaN as null) atomically."""
    atomic_write_text(path, json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n")


def findings_table(results: list[dict]) -> str:
    """A plain-text table of ``evaluate_findings`` results: number, id, holds / applicable runs, sign-test p."""
    lines = [f"{'#':>2}  {'finding':<32} {'holds':>9}  {'p':>6}  evidence"]
    for f in results:
        verdict = f"{f['holds_runs']}/{f['applicable_runs']}" if f["applicable_runs"] else NA
        p = "-" if f["sign_test_p"] is None else f"{f['sign_test_p']:.3g}"
        lines.append(f"{f['number']:>2}  {f['id']:<32} {verdict:>9}  {p:>6}  {f['evidence_summary']}")
    return "\n".join(lines) + "\n"
