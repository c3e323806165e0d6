"""The published findings of Xin, Lin & Yu (EMNLP 2019), kept as data in rules.toml, measured on one analysed run:
per case a statistic, whether it holds, and where it lies in a within-run null."""

from __future__ import annotations

import itertools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from nerve.analysis.core import INTERVENTIONS
from nerve.analysis.findings_ablation import RunWithin, ablation_case, run_sentences, run_sweeps
from nerve.analysis.stats import case_rng, null_fields, permuted_column_products, unit_permutations
from nerve.analysis.within import VAR as _VAR
from nerve.analysis.within import best_other as _best_other
from nerve.analysis.within import bootstrap_variance, stack_statistic, unit_bootstrap
from nerve.analysis.within import expand as _expand
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
ABLATIONS = INTERVENTIONS.names()  # the interventions an ablation finding may be judged under
NA = "not applicable"
STATISTICS = {"alpha": 0.05, "permutations": 1000, "resamples": 200, "seed": 0}
SESOI = {"corr": 0.1, "similarity": 0.1, "ablation": 0.02}  # smallest effect of interest when a clause names none


@dataclass(frozen=True)
class RunEvidence:
    """What the findings read of one run.

    tags (T,); s: (n, T) sensitivities and W: (T, n) output weights (for the matrices and their permutation
    nulls), or the matrices corr / similarity (T, T) alone (no null then); sweeps: per ablation value
    (each of ``ABLATIONS``) the ablation rows of the sensitivity ranking (selection "top") and of the random draws
    (selection "random"), fields as ablation.csv; rank_split / score_split: the splits that ranked the units
    and that scored the ablations; support: tokens per tag on the scoring split (per_tag_accuracy.json), for the
    ablation statistics' binomial within-run variance; sentences: per ablation value the sweeps' per-sentence
    counts (``sentence_counts.SweepCounts``), for their bootstrap over sentences
    (``findings_ablation.run_sentences``)."""

    tags: list[str]
    name: str = ""
    corr: np.ndarray | None = None
    similarity: np.ndarray | None = None
    sweeps: Mapping[str, np.ndarray] = field(default_factory=dict)
    s: np.ndarray | None = None
    W: np.ndarray | None = None
    rank_split: str = ""
    score_split: str = ""
    support: Mapping[str, int] = field(default_factory=dict)
    sentences: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, run) -> RunEvidence:
        """The evidence of an ``AnalysedRun``: its matrices from s and W, and its ablation sweeps — held out from
        methods.csv (the sensitivity ranking and the random draws, every ablation value) when the analysis judged
        the methods, else ablation.csv (zero ablation, ranked and scored on the analysis split)."""
        from nerve.analysis.matrices import corr_matrix, similarity_matrix

        sweeps, rank, score = run_sweeps(run)
        support = {str(t): int(n) for t, n in ((getattr(run, "accuracy", None) or {}).get("support") or {}).items()}
        return cls(list(run.tags), run.name, corr_matrix(run.s), similarity_matrix(run.W), sweeps,
                   np.asarray(run.s, dtype=np.float64), np.asarray(run.W, dtype=np.float64), rank, score, support,
                   run_sentences(run))

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

    def bootstrap(self, name: str, resamples: int, seed: int) -> np.ndarray | None:
        """(resamples, T, T): the matrix ``name`` over units resampled with replacement (``within.unit_bootstrap``;
        the same resamples for every case of the run), None without s / W; computed once per run."""
        x = self.s if name == "corr" else self.W
        if x is None or (name == "corr" and x.shape[0] < 2):
            return None
        cache = self.__dict__.setdefault("_boot", {})
        key = (name, int(resamples), int(seed))
        if key not in cache:
            cache[key] = unit_bootstrap(np.asarray(x, dtype=np.float64), name, resamples,
                                        case_rng(seed, "units", name))
        return cache[key]


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
    if not (0 < stats["alpha"] < 1 and stats["permutations"] >= 1 and stats["resamples"] >= 2):
        raise ValueError(f"{src}: [statistics] expects 0 < alpha < 1, permutations >= 1 and resamples >= 2")
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
    if "baseline" in c and (c["kind"] != "compare" or not isinstance(c["baseline"], list)
                            or not all(isinstance(p, list) and len(p) == 2 for p in c["baseline"])):
        raise ValueError(f"{where}: expected baseline (compare clauses only) as a list of [a, b] tag patterns")
    sesoi = c.get("sesoi", 0.0)
    if not isinstance(sesoi, (int, float)) or not 0 <= sesoi < 1:
        raise ValueError(f"{where}: expected sesoi, the smallest effect of interest, in [0, 1)")


def sesoi(clause: dict) -> float:
    """The clause's smallest effect of interest: its ``sesoi``, else ``SESOI`` of its statistic's scale."""
    if "sesoi" in clause:
        return float(clause["sesoi"])
    return SESOI[clause.get("matrix", "ablation")]


# ----------------------------------------------------------------------------------------------- cases


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


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


def _matrix_case(clause: dict, run: RunEvidence, M: np.ndarray, case: tuple[dict, tuple, str], stats: dict) -> dict:
    """Evidence of one case (its tag binding, tag pair tt and key) of a matrix clause: value M[a, b], statistic
    (minus the baseline's mean when the clause is a contrast; the uncontrasted one as raw), its within-run
    variance (bootstrap over units), holds (None when NaN), and the null of the raw statistic from
    ``stats['permutations']`` permutations of tag b's units."""
    binding, tt, key = case
    tags = [str(t) for t in run.tags]
    op, threshold = direction(clause)
    stat, ev = _matrix_stat(clause, M, tags, binding, tt)
    value = _num(M[tags.index(tt[0]), tags.index(tt[1])])
    contrast = _num(stack_statistic(clause, M[None], tags, binding, tt)[0])
    out = {"tags": list(tt), "value": value, "statistic": contrast, "holds": None} | ev
    if clause.get("baseline") and _num(stat) is not None:
        out |= {"raw": _num(stat), "baseline": None if contrast is None else float(stat) - contrast}
    if out["statistic"] is None:
        return out | {"reason": ev.get("reason", "NaN" if not clause.get("baseline") else "no baseline pair")}
    d = oriented(out["statistic"], op, threshold)
    out |= {"oriented": d, "holds": bool(d > 0)}
    boot = run.bootstrap(clause["matrix"], int(stats["resamples"]), int(stats["seed"]))
    if boot is not None:
        out["variance"] = bootstrap_variance(stack_statistic(clause, boot, tags, binding, tt))
    u = run.unit_columns(clause["matrix"])
    if u is not None:
        rng = case_rng(stats["seed"], key)
        perms = unit_permutations(u.shape[0], int(stats["permutations"]), rng)
        row_b = permuted_column_products(u, tags.index(tt[1]), perms)
        null = np.asarray(_matrix_stat(clause, M, tags, binding, tt, row_b)[0], dtype=np.float64)
        out |= null_fields(oriented(stat, op, threshold), oriented(null, op, threshold), stat, null)
    return out


def _quantify(quantifier: str, n_hold: int, n: int) -> bool:
    return {"all": n_hold == n, "most": n_hold > n / 2, "any": n_hold >= 1}[quantifier]


def evaluate_clause(clause: dict, run: RunEvidence, ablate: str = "zero", stats: dict | None = None,
                    key: str = "") -> dict:
    """One clause on one run; see ``evaluate_rule``."""
    stats = STATISTICS | (stats or {})
    tags = [str(t) for t in run.tags]
    op, threshold = direction(clause)
    out = {"kind": clause["kind"], "quantifier": clause.get("quantifier", "all"), "op": op, "threshold": threshold,
           "sesoi": sesoi(clause)}
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
        ev = (_matrix_case(clause, run, M, (binding, tt, f"{key}/{name}"), stats) if "matrix" in clause
              else ablation_case(clause, by_target[tt[0]], tags, tt[0], k,
                                 RunWithin(run.support, run.sentences.get(ablate), stats)))
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
