"""Calibration of the findings' verdicts (issue 29, acceptance 1): simulated studies with a known truth, judged by
the code ``evaluate_findings`` uses (``meta.random_effects``, ``meta.holm_decide``, ``verdicts.quantified``).

Each simulated study has m cases (one clause, quantifier "all"), k runs, a smallest effect of interest δ = 0.1.
Case c in run i: y = θ + u_i + e_i with u_i ~ N(0, τ²) (seed-to-seed variation) and e_i ~ N(0, σ_w²) (within-run
noise); the run reports y and an estimate of its within-run variance, σ_w² · χ²_49 / 49 (as noisy as a
bootstrap's). Truths: null θ = 0; below the SESOI θ = δ/2; at the SESOI θ = δ (a "holds" is still false there);
planted θ = 2.5 δ; reversed θ = −2.5 δ.

Printed per truth, run count and within-run noise: the share of cases per verdict class; the family-wise rate of a
false "holds" or "contradicted" (any case of a study) with its Clopper–Pearson 95 % interval (must be ≤ α under
the null, below the SESOI and at it); the power (the share of planted cases that hold, and of studies whose "all"
clause holds).

    python bench/calibration.py            # ~4 min on one core
    python bench/calibration.py --reps 200 # a quick look
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import cpu_name
from statsmodels.stats.proportion import proportion_confint

from nerve.analysis.meta import CONTRADICTED, HOLDS, INCONCLUSIVE, NEGLIGIBLE, holm_decide, random_effects
from nerve.analysis.verdicts import quantified

DELTA, ALPHA, TAU = 0.1, 0.05, 0.05
TRUTHS = {"null": 0.0, "below SESOI": DELTA / 2, "at SESOI": DELTA, "planted": 2.5 * DELTA,
          "reversed": -2.5 * DELTA}
FALSE = {"null": (HOLDS, CONTRADICTED), "below SESOI": (HOLDS, CONTRADICTED), "at SESOI": (HOLDS, CONTRADICTED),
         "planted": (CONTRADICTED, NEGLIGIBLE), "reversed": (HOLDS, NEGLIGIBLE)}
CLASSES = (HOLDS, CONTRADICTED, NEGLIGIBLE, INCONCLUSIVE)


def study(rng: np.random.Generator, theta: float, k: int, m: int, noise: float) -> list[str]:
    """The verdicts of the m cases of one simulated study."""
    y = theta + rng.normal(scale=TAU, size=(m, k)) + rng.normal(scale=noise, size=(m, k))
    v = noise ** 2 * rng.chisquare(49, size=(m, k)) / 49
    ests = [random_effects(y[c], v[c]) for c in range(m)]
    decisions, _ = holm_decide(ests, [0.0] * m, [1] * m, [DELTA] * m, ALPHA)
    return [d.verdict for d in decisions]


def cell(name: str, k: int, noise: float, reps: int, m: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, k, int(noise * 1000), list(TRUTHS).index(name)])
    counts = dict.fromkeys(CLASSES, 0)
    false_studies = all_hold = 0
    for _ in range(reps):
        verdicts = study(rng, TRUTHS[name], k, m, noise)
        for v in verdicts:
            counts[v] += 1
        false_studies += any(v in FALSE[name] for v in verdicts)
        all_hold += quantified("all", [{"verdict": v, "p_holm": 0.0} for v in verdicts])[0] == HOLDS
    lo, hi = proportion_confint(false_studies, reps, alpha=0.05, method="beta")
    return {"share": {c: counts[c] / (reps * m) for c in CLASSES}, "fwer": false_studies / reps, "ci": (lo, hi),
            "all_hold": all_hold / reps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=800, help="studies per cell for the null and the SESOI truths")
    ap.add_argument("--cases", type=int, default=10, help="cases per study (Holm over them)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--study-cases", type=int, default=78, help="cases of the power table (78: CoNLL-2003's)")
    ap.add_argument("--study-reps", type=int, default=30, help="studies per cell of the power table")
    ap.add_argument("--pipeline-reps", type=int, default=200,
                    help="null studies run end to end (5 runs; a third of them at 10 runs)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"machine: {cpu_name()}; one core; δ = {DELTA}, α = {ALPHA} (family-wise, Holm over {args.cases} cases "
          f"per study), between-run sd τ = {TAU}")
    print(f"{'truth':<12} {'runs':>4} {'σ_w':>5} {'holds':>6} {'contra':>6} {'neglig':>6} {'inconc':>6}  "
          f"{'false claim rate [Clopper–Pearson 95 %]':<40} {'all hold':>8}")
    for name in TRUTHS:
        reps = args.reps if name in ("null", "below SESOI", "at SESOI") else max(args.reps * 2 // 5, 50)
        for k in (3, 5, 10):
            for noise in (0.02, 0.05, 0.1):
                r = cell(name, k, noise, reps, args.cases, args.seed)
                s = r["share"]
                flag = "" if r["ci"][0] <= ALPHA or name in ("planted", "reversed") else "  > α!"
                print(f"{name:<12} {k:>4} {noise:>5.2f} {s[HOLDS]:>6.3f} {s[CONTRADICTED]:>6.3f} "
                      f"{s[NEGLIGIBLE]:>6.3f} {s[INCONCLUSIVE]:>6.3f}  "
                      f"{r['fwer']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] of {reps:<17} {r['all_hold']:>8.3f}{flag}")
    print("false claim: holds or contradicted (null, below and at the SESOI), contradicted or negligible (planted), "
          "holds or negligible (reversed), in any case of a study")
    m = args.study_cases
    print(f"\npower at the study's size (Holm over {m} cases, {args.study_reps} studies per cell): "
          "the share of planted "
          "cases that hold, by effect and runs")
    print(f"{'effect':>7} {'σ_w':>5} " + " ".join(f"{f'{k} runs':>8}" for k in (3, 5, 10)))
    for theta in (1.5 * DELTA, 2.5 * DELTA, 5 * DELTA):
        for noise in (0.02, 0.05):
            row = []
            for k in (3, 5, 10):
                rng = np.random.default_rng([args.seed, k, int(noise * 1000), int(theta * 1000), 7])
                held = sum(v == HOLDS for _ in range(args.study_reps) for v in study(rng, theta, k, m, noise))
                row.append(held / (args.study_reps * m))
            print(f"{theta:>7.2f} {noise:>5.2f} " + " ".join(f"{p:>8.3f}" for p in row))
    pipeline(args.pipeline_reps, args.seed)
    pipeline(max(args.pipeline_reps // 3, 10), args.seed, k=10, n_units=256)
    print(f"{time.perf_counter() - t0:.0f} s")


def pipeline(reps: int, seed: int, k: int = 5, n_units: int = 64) -> None:
    """End to end through ``evaluate_findings``: studies of k runs whose sensitivities and output weights are
    independent normal noise (every correlation and cosine is 0 in truth), so any "holds" or "contradicted" of a
    compare clause (findings 1, 2, 3, 4, 6, 8's first clause) is false; the within-run variances are the
    bootstrap over units, as in a real study."""
    from nerve.analysis.findings import RunEvidence
    from nerve.analysis.matrices import corr_matrix, similarity_matrix
    from nerve.analysis.verdicts import evaluate_findings

    tags = ["B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER", "O"]
    rng = np.random.default_rng([seed, 29])
    false = cases = negligible = 0
    for _ in range(reps):
        runs = []
        for i in range(k):
            s, W = rng.normal(size=(n_units, 9)), rng.normal(size=(9, n_units))
            runs.append(RunEvidence(tags, f"seed{i}", corr_matrix(s), similarity_matrix(W), s=s, W=W))
        out = evaluate_findings(runs, statistics={"permutations": 1, "resamples": 100})
        verdicts = [c["verdict"] for f in out for cl in f["clauses"] if cl["kind"] == "compare" for c in cl["cases"]]
        false += any(v in (HOLDS, CONTRADICTED) for v in verdicts)
        negligible += sum(v == NEGLIGIBLE for v in verdicts)
        cases += len(verdicts)
    lo, hi = proportion_confint(false, reps, alpha=0.05, method="beta")
    print(f"\nend to end (evaluate_findings, {reps} null studies of {k} runs × {n_units} units, noise sensitivities "
          f"and weights, Holm over every case): studies with a false holds / contradicted among the {cases // reps} "
          f"compare cases: {false / reps:.3f} [{lo:.3f}, {hi:.3f}]; cases negligible: {negligible / cases:.3f}")


if __name__ == "__main__":
    main()
