"""The published findings of Xin, Lin & Yu (EMNLP 2019), kept as data in rules.toml, measured on one analysed run:
per case a statistic, whether it holds, and where it lies in a within-run null."""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from nerve.analysis.findings_ablation import ablation_case, run_sweeps
from nerve.analysis.stats import case_rng, null_fields, permuted_column_products, unit_permutations
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
ABLATIONS = ("zero", "mean")
NA = "not applicable"
STATISTICS = {"alpha": 0.05, "level": 0.95, "permutations": 1000, "resamples": 10_000, "seed": 0}
_VAR = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class RunEvidence:
    """What the findings read of one run.

    tags (T,); s: (n, T) sensitivities and W: (T, n) output weights (for the matrices and their permutation
    nulls), or the matrices corr / similarity (T, T) alone (no null then); sweeps: per ablation value
    ("zero", "mean") the ablation rows of the sensitivity ranking (selection "top") and of the random draws
    (selection "random"), fields as ablation.csv; rank_split / score_split: the splits that ranked the units
    and that scored the ablations."""

    tags: list[str]
    name: str = ""
    corr: np.ndarray | None = None
    similarity: np.ndarray | None = None
    sweeps: Mapping[str, np.ndarray] = field(default_factory=dict)
    s: np.ndarray | None = None
    W: np.ndarray | None = None
    rank_split: str = ""
    score_split: str = ""

    @classmethod
    def of(cls, run) -> RunEvidence:
        """The evidence of an ``AnalysedRun``: its matrices from s and W, and its ablation sweeps — held out from
        methods.csv (the sensitivity ranking and the random draws, every ablation value) when the analysis judged
        the methods, else ablation.csv (zero ablation, ranked and scored on the analysis split)."""
        from nerve.analysis.matrices import corr_matrix, similarity_matrix

        sweeps, rank, score = run_sweeps(run)
        return cls(list(run.tags), run.name, corr_matrix(run.s), similarity_matrix(run.W), sweeps,
                   np.asarray(run.s, dtype=np.float64), np.asarray(run.W, dtype=np.float64), rank, score)

    def matrix(self, name: str) -> np.ndarray | None:
        M = self.corr if name == "corr" else self.similarity
        return None if M is None else np.asarray(M, dtype=np.float64)

    @cached_property
    def _units(self) -> dict:
        from nerve.analysis.matrices import unit_vectors

        out = {}
        if self.s is not None and self.s.shape[0] >= 2:
            with np.errstate(invalid="ignore"):
                centred = self.s - self.s.mean(axis=0)
            out["corr"] = unit_vectors(centred.T, axis=1, ref=self.s.T)[0].T
        if self.W is not None and self.W.shape[1] >= 1:
            out["similarity"] = unit_vectors(self.W, axis=1)[0].T
        return out

    def unit_columns(self, name: str) -> np.ndarray | None:
        """(n, T) unit-length columns whose dot products are the matrix ``name`` (None without s / W)."""
        return self._units.get(name)


def load_rules(path: str | os.PathLike | None = None) -> tuple[list[dict], dict]:
    """The findings of a rules file (default: the packaged ``rules.toml``), checked, and its statistics settings.

    The format (finding and clause keys, tag patterns, rule kinds, the [statistics] table) is described in the
    comment block at the top of the packaged rules.toml.

    Returns:
        (findings: list of dicts with number, id, description, clause (list of clause dicts) and ablate
        (ablation values, ablation findings only), statistics: ``STATISTICS`` updated by the file's table).

    Raises:
        ValueError: invalid TOML, or a finding or clause lacks a key or names an unknown kind, matrix,
            op, quantifier or ablation value.
    """
    src = DEFAULT_RULES if path is None else Path(path)
    try:
        data = tomllib.loads(src.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{src}: not valid TOML ({err})") from None
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
            _check_clause(c, where)
        ablative = [c["kind"].startswith("ablation") for c in r["clause"]]
        if any(ablative):
            if not all(ablative):
                raise ValueError(f"{where}: expected ablation clauses only, or none")
            r["ablate"] = list(r.get("ablate", ["zero"]))
            if not r["ablate"] or any(a not in ABLATIONS for a in r["ablate"]):
                raise ValueError(f"{where}: expected ablate to list some of {', '.join(ABLATIONS)}")
    stats = dict(STATISTICS)
    given = data.get("statistics", {})
    unknown = [k for k in given if k not in STATISTICS]
    if unknown:
        raise ValueError(f"{src}: [statistics] expects keys {', '.join(STATISTICS)}, got {', '.join(unknown)}")
    stats.update(given)
    if not (0 < stats["alpha"] < 1 and 0 < stats["level"] < 1 and stats["permutations"] >= 1
            and stats["resamples"] >= 1):
        raise ValueError(f"{src}: [statistics] expects 0 < alpha, level < 1 and permutations, resamples >= 1")
    return rules, stats


def _check_clause(c: dict, where: str) -> None:
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


def direction(clause: dict) -> tuple[str, float]:
    """(op, threshold) of the clause's per-case statistic: a case holds when statistic op threshold."""
    if clause["kind"] == "compare":
        return clause["op"], float(clause["value"])
    if clause["kind"] == "is_most" and clause.get("negate"):
        return "<", 0.0
    return ">", 0.0


def oriented(stat: np.ndarray | float, op: str, threshold: float):
    """The statistic turned so that positive means "holds": stat − threshold for ">", threshold − stat for "<"."""
    return stat - threshold if op == ">" else threshold - stat


def _best_other(M_row: np.ndarray, exclude: list[int]) -> np.ndarray:
    """Largest finite value of a row (or of each row of a (P, T) stack) outside ``exclude``; NaN if none."""
    row = np.array(M_row, dtype=np.float64, copy=True)
    row[..., exclude] = np.nan
    best = np.max(np.where(np.isfinite(row), row, -np.inf), axis=-1)
    return np.where(np.isfinite(best), best, np.nan)


def _matrix_stat(clause: dict, M: np.ndarray, tags: list[str], binding: dict, tt: tuple,
                 row_b: np.ndarray | None = None) -> tuple[float | np.ndarray, dict]:
    """The case's statistic (and its evidence), or with ``row_b`` (P, T) — tag b's matrix row under P
    permutations of b's units — the statistic under each permutation (a (P,) array)."""
    ix = {t: i for i, t in enumerate(tags)}
    a, b = ix[tt[0]], ix[tt[1]]
    ab = M[a, b] if row_b is None else row_b[:, a]
    kind, ev = clause["kind"], {}
    if kind == "compare":
        return ab, ev
    if kind == "is_most":
        margins = [ab - _best_other(M[a], [a, b])]
        if clause.get("both_ways"):
            margins.append(ab - _best_other(M[b] if row_b is None else row_b, [a, b]))
        if row_b is None:
            for label, x in (("a", a), ("b", b))[: len(margins)]:
                row = np.where(np.isfinite(M[x]) & (np.arange(len(tags)) != x), M[x], -np.inf)
                j = int(np.argmax(row)) if np.isfinite(row.max()) else None
                ev[f"most_similar_to_{label}"] = None if j is None else tags[j]
                ev[f"most_similar_to_{label}_value"] = None if j is None else _num(M[x, j])
        stack = np.stack(margins)
        return (np.max(stack, axis=0) if clause.get("negate") else np.min(stack, axis=0)), ev
    # some_exceeds: the best candidate (a row of a, untouched by permuting b) minus M[a, b]
    (free,) = [n for n in _VAR.findall(clause["candidates"]) if n not in binding] or [None]
    taken = set(binding.values())
    cands = [c for t in entity_types(tags) if t not in taken
             if (c := _expand(clause["candidates"], binding | ({free: t} if free else {}))) in ix and c not in tt]
    vals = [(float(M[a, ix[c]]), c) for c in cands if math.isfinite(M[a, ix[c]])]
    if not vals:
        return math.nan, {"reason": "no candidate tag"}
    best, c = max(vals)
    if row_b is None:
        ev = {"best_candidate": c, "best_value": best}
    return best - ab, ev


def _matrix_case(clause: dict, run: RunEvidence, M: np.ndarray, binding: dict, tt: tuple, stats: dict,
                 key: str) -> dict:
    """Evidence of one case of a matrix clause: value M[a, b], statistic, holds (None when NaN), and the null
    from ``stats['permutations']`` permutations of tag b's units."""
    tags = [str(t) for t in run.tags]
    op, threshold = direction(clause)
    stat, ev = _matrix_stat(clause, M, tags, binding, tt)
    value = _num(M[tags.index(tt[0]), tags.index(tt[1])])
    out = {"tags": list(tt), "value": value, "statistic": _num(stat), "holds": None} | ev
    if out["statistic"] is None:
        return out | {"reason": ev.get("reason", "NaN")}
    d = oriented(out["statistic"], op, threshold)
    out |= {"oriented": d, "holds": bool(d > 0)}
    u = run.unit_columns(clause["matrix"])
    if u is not None:
        rng = case_rng(stats["seed"], key)
        perms = unit_permutations(u.shape[0], int(stats["permutations"]), rng)
        row_b = permuted_column_products(u, tags.index(tt[1]), perms)
        null = np.asarray(_matrix_stat(clause, M, tags, binding, tt, row_b)[0], dtype=np.float64)
        out |= null_fields(d, oriented(null, op, threshold), stat, null)
    return out


def _quantify(quantifier: str, n_hold: int, n: int) -> bool:
    return {"all": n_hold == n, "most": n_hold > n / 2, "any": n_hold >= 1}[quantifier]


def evaluate_clause(clause: dict, run: RunEvidence, ablate: str = "zero", stats: dict | None = None,
                    key: str = "") -> dict:
    """One clause on one run; see ``evaluate_rule``."""
    stats = STATISTICS if stats is None else stats
    tags = [str(t) for t in run.tags]
    op, threshold = direction(clause)
    out = {"kind": clause["kind"], "quantifier": clause.get("quantifier", "all"), "op": op, "threshold": threshold}
    if "matrix" in clause:
        out["matrix"] = clause["matrix"]
        M = run.matrix(clause["matrix"])
        if M is None:
            return out | {"status": NA, "holds": None, "reason": f"no {clause['matrix']} matrix (no s / W)"}
    else:
        rows = run.sweeps.get(ablate)
        if rows is None or not len(rows):
            return out | {"status": NA, "holds": None, "reason": f"no {ablate}-ablation sweep"}
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
        name = "/".join(tt)
        ev = (_matrix_case(clause, run, M, binding, tt, stats, f"{key}/{name}") if "matrix" in clause
              else ablation_case(clause, by_target[tt[0]], tags, tt[0], k))
        evidence.append({"key": name, "binding": binding} | ev)
    done = [e for e in evidence if e["holds"] is not None]
    skipped += [{"tags": e["tags"], "reason": e["reason"]} for e in evidence if e["holds"] is None]
    if not done:
        return out | {"status": NA, "holds": None, "reason": "every case skipped", "skipped": skipped}
    n_hold = sum(e["holds"] for e in done)
    holds = _quantify(out["quantifier"], n_hold, len(done))
    return out | {"status": "holds" if holds else "fails", "holds": holds, "reason": None, "n_cases": len(done),
                  "n_holding": int(n_hold), "cases": done, "skipped": skipped}


def evaluate_rule(rule: dict, run: RunEvidence, ablate: str = "zero", stats: dict | None = None) -> dict:
    """One finding on one run.

    Args:
        rule: a finding from ``load_rules``.
        run: the run's evidence (``RunEvidence.of`` an analysed run, or built by hand).
        ablate: the ablation value whose sweep the ablation clauses read.
        stats: the rules file's statistics settings (permutations, seed; default ``STATISTICS``).

    Returns:
        dict: run, status ("holds", "fails" or "not applicable" — in this run alone, by the clause's
        quantifier), holds (bool or None), reason, clauses (per clause: kind, op and threshold of its statistic,
        status, holds, n_cases, n_holding, cases with their statistic, oriented statistic (> 0: holds) and
        within-run null (null_p, null_mean, null_lo, null_hi, null_z), skipped cases). The finding holds when
        every clause holds; it is not applicable when any clause is.
    """
    clauses = [evaluate_clause(c, run, ablate, stats, f"{rule['id']}/{i}") for i, c in enumerate(rule["clause"])]
    na = [c for c in clauses if c["status"] == NA]
    holds = None if na else all(c["holds"] for c in clauses)
    return {"run": run.name, "status": NA if na else ("holds" if holds else "fails"), "holds": holds,
            "reason": "; ".join(c["reason"] for c in na) or None, "clauses": clauses}
