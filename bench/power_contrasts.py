"""Power of the architecture contrasts (issue 29): simulated grids shaped like the real one, judged like
``nerve.analysis.contrasts`` judges a grid study (OLS on the cell means, t on the residual df, Holm over every
contrast of the study, holds when the interval at the contrast's Holm level lies outside ±δ).

The grid: README "The architecture grid" — char none / lstm / cnn × word encoder lstm / cnn × inference softmax /
crf = 12 cells, seeds per cell n, and the recipe (the batch-mean SGD recipe of `--cell-set model.encoder=cnn:…` and
`--cell-set model.char=cnn:…`) in every cell with a word CNN or a char CNN — so 4 factors (char, encoder, decoder,
recipe), 6 contrasts per clause (3 char pairs, encoder, decoder, recipe), residual df 12 − 6 = 6. The study's
clauses come from the packaged rules.toml (13 clauses with both ablation values: Holm over 78 contrasts).

A run's clause effect in cell c: y = μ + effect(c) + u_c + e_run, u_c ~ N(0, σ_c²) the cell's own deviation
(interactions; between-cell residual sd), e_run ~ N(0, σ_s²) seed to seed (its within-run noise included).

Where the numbers come from:
- σ_s (seed-to-seed sd of the per-run clause effect), two values per clause:
  "measured": the sd over the 10 runs of the default xin2019 study of docs/RESULTS.md ("Issue 29: the default
  10-seed study", /work/runs/xin2019/study.json; per run the mean of the clause's cases,
  ``contrasts.run_effects``): finding 1 0.064, finding 7 0.098 (the other clauses' in ``SEED_SD``);
  "upper": backed out of the 95 % intervals printed in docs/RESULTS.md for the same study, sd = half-width /
  t(0.975, 9) · √10: finding 1 +0.38 [+0.30, +0.47] → 0.12, finding 7 +0.38 [+0.18, +0.59] → 0.29 (those
  intervals are floored by the within-run variances, the Knapp–Hartung truncation, so they overstate the spread
  of the runs' values: an upper bound). Both come from one architecture (xin2019: no char, BiLSTM 50, softmax),
  not from the grid's 200-unit models; the grid's per-run effects were not recorded in docs/RESULTS.md.
- σ_c (between-cell residual sd): never measured; a range, 0, 0.05, 0.10.
- The contrasts' effects: never measured as effects (docs/RESULTS.md's grid section has only counts of runs:
  finding 1 held in every run of the 6 softmax cells and in 0–2 of 3 runs of the CRF ones; finding 7 in every run
  of the 6 word-CNN cells, 0–2 of 3 of the BiLSTM ones). A range: 0.15, 0.25, 0.40 (0.40 ≈ the whole softmax-cell
  level of finding 1, +0.38 in the 10-seed xin2019 study, i.e. a CRF that removes it; finding 7's BiLSTM level is
  +0.38 too). δ = 0.1 (rules.toml) for both. Every other clause and factor: no effect.

Printed: the power to decide each planted contrast ("holds": finding 1's decoder contrast, finding 7's encoder
contrast with the recipe as a factor) at α = 0.05 after Holm over the study's 78 contrasts, for 3, 5, 10 and 20
seeds per cell; and the rate of studies with a false "holds" (any of the 78 contrasts) when no factor changes any
effect, with its Clopper–Pearson 95 % interval. The first studies are also judged by
``contrasts.study_contrasts`` itself and must agree with the vectorised path.

    python bench/power_contrasts.py               # ~1 min on one core
    python bench/power_contrasts.py --reps 500    # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import sys
import time

import numpy as np
from machine import cpu_name
from scipy import special
from statsmodels.stats.proportion import proportion_confint

from nerve.analysis.contrasts import design, joint_factors, recipe_level, study_contrasts, varying
from nerve.analysis.findings import load_rules
from nerve.analysis.meta import HOLDS
from nerve.analysis.stats import holm

ALPHA = 0.05
SEEDS = (3, 5, 10, 20)
CELL_SD = (0.0, 0.05, 0.10)
EFFECTS = (0.15, 0.25, 0.40)
LEVELS = {"char": ("none", "lstm", "cnn"), "encoder": ("lstm", "cnn"), "decoder": ("softmax", "crf")}
RECIPE = ["train.ave_batch_loss=true", "train.lr=0.3", "train.clip=5"]
# seed-to-seed sd of each clause's per-run effect, 10 runs of the xin2019 study (see the module docstring);
# key (finding, ablate, clause)
SEED_SD = {(1, None, 1): 0.064, (2, None, 1): 0.094, (3, None, 1): 0.023, (4, None, 1): 0.042,
           (5, None, 1): 0.072, (6, None, 1): 0.030, (7, None, 1): 0.098, (8, None, 1): 0.008,
           (8, None, 2): 0.057, (9, "zero", 1): 0.025, (9, "mean", 1): 0.043, (10, "zero", 1): 0.024,
           (10, "mean", 1): 0.034}
UPPER = {(1, None, 1): 0.12, (7, None, 1): 0.29}  # from the intervals in docs/RESULTS.md
TARGETS = {(1, None, 1): ("decoder", "softmax", "crf"), (7, None, 1): ("encoder", "lstm", "cnn")}


def grid_cells() -> list[dict[str, str]]:
    """The 12 cells' factor levels, the recipe as the README's command gives it."""
    out = []
    for ch, en, de in itertools.product(*LEVELS.values()):
        out.append({"char": ch, "encoder": en, "decoder": de,
                    "recipe": recipe_level(RECIPE if "cnn" in (ch, en) else [])})
    return out


def study_clauses() -> list[tuple[int, str | None, int, float]]:
    """(finding, ablate, clause, sesoi) of every clause of the packaged rules, ablation values expanded."""
    rules, _ = load_rules(None)
    return [(r["number"], ab, ci + 1, float(cl.get("sesoi", 0.1)))
            for r in rules for ab in r.get("ablate", [None]) for ci, cl in enumerate(r["clause"])]


def contrast_matrix(cells, factors, columns) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
    """One row per contrast (factor, low, high): the coefficient combination high − low."""
    names = [(f.name, lo, hi) for f in factors for lo, hi in itertools.combinations(f.levels, 2)]
    C = np.zeros((len(names), 1 + len(columns)))  # shape: (contrasts, parameters)
    for i, (name, lo, hi) in enumerate(names):
        for lv, s in ((hi, 1.0), (lo, -1.0)):
            if (name, lv) in columns:
                C[i, 1 + columns.index((name, lv))] += s
    return C, names


def simulate(rng, clauses, cells, n, cell_sd, seed_sd, effects) -> np.ndarray:
    """Cell means of ``reps`` studies: (reps, clauses, cells); ``effects`` (clauses, cells) the true effects."""
    reps = effects.shape[0]
    sd = np.array([seed_sd[(f, a, c)] for f, a, c, _ in clauses])  # shape: (clauses,)
    runs = rng.normal(size=(reps, len(clauses), len(cells), n)) * sd[None, :, None, None]
    return effects + rng.normal(scale=cell_sd, size=effects.shape) + runs.mean(axis=3)


def judge(Y, X, C, deltas) -> tuple[np.ndarray, np.ndarray]:
    """The contrasts of studies Y (reps, clauses, cells): (holds (reps, clauses, contrasts), Holm-adjusted p),
    exactly as ``contrasts.study_contrasts``: OLS, t(df), decision p = 2 · min(p beyond +δ, beyond −δ, inside ±δ),
    Holm over every contrast of a study; holds when Holm rejects and the interval lies outside ±δ."""
    pinv = np.linalg.pinv(X)  # shape: (parameters, cells)
    df = X.shape[0] - np.linalg.matrix_rank(X)
    beta = Y @ pinv.T  # shape: (reps, clauses, parameters)
    resid = Y - beta @ X.T
    s2 = (resid ** 2).sum(axis=-1) / df  # shape: (reps, clauses)
    est = beta @ C.T  # shape: (reps, clauses, contrasts)
    se = np.sqrt(s2[..., None] * np.einsum("ij,jk,ik->i", C, np.linalg.inv(X.T @ X), C))
    d = deltas[None, :, None]
    up, down = special.stdtr(df, -(est - d) / se), special.stdtr(df, -(-est - d) / se)
    inside = np.maximum(special.stdtr(df, -(est + d) / se), special.stdtr(df, -(d - est) / se))
    p = np.minimum(1.0, 2 * np.minimum(np.minimum(up, down), inside))
    flat = p.reshape(p.shape[0], -1)
    adj = np.stack([holm(row) for row in flat]).reshape(p.shape)
    return (adj < ALPHA) & (np.minimum(up, down) < inside), adj


def check_against_module(Y, clauses, cells, holds, adj) -> None:
    """The first studies judged by ``study_contrasts`` must give the same verdicts and Holm p."""
    names = [f"char={c['char']},encoder={c['encoder']},decoder={c['decoder']}" for c in cells]
    for s in range(Y.shape[0]):
        findings = {n: [] for n in names}
        for (f, ab, _ci, sesoi), y in zip(clauses, Y[s]):
            for n, v in zip(names, y):
                entry = next((x for x in findings[n] if (x["number"], x["ablate"]) == (f, ab)), None)
                if entry is None:
                    entry = {"number": f, "id": f"f{f}", "ablate": ab, "clauses": []}
                    findings[n].append(entry)
                entry["clauses"].append({"statistic": "s", "cases": [
                    {"key": "k", "runs": ["r"], "values": [float(v)], "sesoi": sesoi}]})
        out = study_contrasts(dict(zip(names, cells)), findings, ALPHA)
        mine = holds[s].ravel()
        theirs = np.array([c.verdict == HOLDS for c in out])
        assert np.array_equal(mine, theirs), "the vectorised verdicts differ from contrasts.study_contrasts"
        assert np.allclose(adj[s].ravel(), [c.p_holm for c in out], rtol=1e-8, atol=1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2000, help="simulated studies per setting")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    cells, clauses = grid_cells(), study_clauses()
    factors = joint_factors(cells, varying(cells))
    X, columns = design(cells, factors)
    C, names = contrast_matrix(cells, factors, columns)
    deltas = np.array([s for *_, s in clauses])
    m = len(clauses) * len(names)
    df = X.shape[0] - np.linalg.matrix_rank(X)
    print(f"machine: {cpu_name()}; {platform.platform()}; Python {platform.python_version()}; one process")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"grid: {len(cells)} cells ({' × '.join(str(len(v)) for v in LEVELS.values())}), factors "
          f"{', '.join(f.name + (' (' + f.note + ')' if f.note else '') for f in factors)}; {len(names)} contrasts "
          f"a clause × {len(clauses)} clauses = {m} contrasts under Holm; OLS on cell means, t({df}); α = {ALPHA}; "
          f"{args.reps} studies per setting")
    inv = np.linalg.inv(X.T @ X)
    print("se of a contrast / sd of a cell mean: " + ", ".join(
        (f"{f} {hi}−{lo}" if f != "recipe" else "recipe (cell-set − none)") + f" {math.sqrt(C[i] @ inv @ C[i]):.3f}"
        for i, (f, lo, hi) in enumerate(names)))
    rng = np.random.default_rng(args.seed)
    ix = {(f, a, c): i for i, (f, a, c, _) in enumerate(clauses)}
    tgt = {k: names.index(v) for k, v in TARGETS.items()}

    print("\nfalse holds when no factor changes any effect: the share of studies with any of the "
          f"{m} contrasts holding [Clopper–Pearson 95 %], σ_s as measured")
    print(f"{'σ_c':>5}" + "".join(f"{f'{n} seeds':>26}" for n in SEEDS))
    checked = False
    for cell_sd in CELL_SD:
        row = f"{cell_sd:5.2f}"
        for n in SEEDS:
            Y = simulate(rng, clauses, cells, n, cell_sd, SEED_SD, np.zeros((args.reps, len(clauses), len(cells))))
            holds, adj = judge(Y, X, C, deltas)
            if not checked:
                check_against_module(Y[:20], clauses, cells, holds[:20], adj[:20])
                checked = True
            k = int(holds.reshape(args.reps, -1).any(axis=1).sum())
            lo, hi = proportion_confint(k, args.reps, alpha=0.05, method="beta")
            row += f"{f'{k / args.reps:.4f} [{lo:.4f}, {hi:.4f}]':>26}"
        print(row)

    print("\npower: the share of studies in which the planted contrast holds (after Holm over all "
          f"{m}); the other contrasts have no effect; other false holds: the share of studies in which any of the "
          f"other {m - 1} holds (over the four seed counts)")
    head = f"{'contrast':<34}{'σ_s':>12}{'σ_c':>6}{'effect':>8}" + "".join(f"{f'{n} seeds':>10}" for n in SEEDS)
    print(head + f"{'other false holds':>20}")
    for key, (fac, lo, hi) in TARGETS.items():
        label = f"finding {key[0]}: {fac} {hi} − {lo}"
        for which, sd_map in (("measured", SEED_SD), ("upper", SEED_SD | UPPER)):
            for cell_sd in CELL_SD:
                for eff in EFFECTS:
                    effects = np.zeros((args.reps, len(clauses), len(cells)))
                    effects[:, ix[key], :] = [eff * (c[fac] == hi) for c in cells]
                    row = f"{label:<34}{f'{which} {sd_map[key]:.3f}':>12}{cell_sd:6.2f}{eff:8.2f}"
                    others = 0
                    for n in SEEDS:
                        holds, _ = judge(simulate(rng, clauses, cells, n, cell_sd, sd_map, effects), X, C, deltas)
                        row += f"{holds[:, ix[key], tgt[key]].mean():10.3f}"
                        mask = np.ones(holds.shape[1:], dtype=bool)
                        mask[ix[key], tgt[key]] = False
                        others += int(holds[:, mask].any(axis=1).sum())
                    print(row + f"{others / (args.reps * len(SEEDS)):20.4f}")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
