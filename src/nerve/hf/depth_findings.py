"""Xin et al.'s findings at every site of a transformer: the rules of ``nerve.analysis.rules.toml`` judged on each
site's evidence over the runs, with the statistics of ``nerve.analysis.verdicts``.

At a site the findings read (``depth.DepthResult.evidence``): the sensitivities s (Xin et al.'s, with the tag
layer's weights replaced by the local read-out: the gradient of each tag's summed logit), the read-out's rows in
place of the tag layer's weights (the cosine findings), and the sensitivity ranking's top-k intervention against
the random k-unit sets at the same site (the ablation findings, under the depth analysis' one intervention). Each
site is one family: Holm over its cases at α / S, S the sites judged (Bonferroni over the sites), so the table's
verdicts hold together at α. The population: the runs given (seeds of one recipe and model), as every verdict says.
"""

from __future__ import annotations

import numpy as np

from nerve.analysis.ablation import FIELDS, SCORES, row_dtype

FINDINGS_FIELDS = ("site", "depth", "finding", "id", "ablate", "verdict", "within_verdict", "p_holm", "statistic",
                   "effect", "ci_low", "ci_high", "level", "n_cases", "n_holding", "applicable_runs", "n_runs",
                   "alpha", "population")


def ablation_rows(evidence: dict, site: str, tags: list[str], k: int) -> np.ndarray:
    """The site's sensitivity-ranked and random interventions as ablation rows (``ablation.FIELDS``, every score
    field the tag's recall, the number the depth analysis measures): per judged target tag, selection ``top`` at
    k = 0 (unedited) and at k, and ``random`` at k for each draw, with every tag as eval_tag."""
    base, top, rnd = evidence["base"], evidence[f"{site}/top"], evidence[f"{site}/random"]
    out = []
    for z, target in enumerate(tags):
        if np.all(np.isnan(top[z])):
            continue  # a tag the site did not judge (no word predicted as it on the ranking split)
        for e, tag in enumerate(tags):
            out.append((target, "top", 0, 0, tag, base[e]))
            out.append((target, "top", k, 0, tag, top[z, e]))
            out += [(target, "random", k, d, tag, rnd[d, e]) for d in range(rnd.shape[0])]
    rows = np.empty(len(out), dtype=row_dtype(max(len(t) for t in tags)))
    for i, (target, selection, kk, draw, tag, value) in enumerate(out):
        rows[i] = (target, selection, kk, draw, tag, *([value] * len(SCORES)))
    assert rows.dtype.names == FIELDS
    return rows


def site_evidence(evidence: dict, site: str, tags: list[str], name: str, spec):
    """One run's ``findings.RunEvidence`` at ``site`` (``spec``: the ``DepthSpec`` that measured it)."""
    from nerve.analysis.findings import RunEvidence
    from nerve.analysis.matrices import corr_matrix, similarity_matrix

    s, W = evidence[f"{site}/s"], evidence[f"{site}/readout"]
    support = {t: int(n) for t, n in zip(tags, evidence["support"])}
    return RunEvidence(list(tags), name, corr_matrix(s), similarity_matrix(W),
                       {spec.intervention: ablation_rows(evidence, site, tags, spec.k)}, s, W, "dev", "test", support)


def findings_by_site(results: dict, tags: list[str], sites: list[str], spec) -> dict[str, list[dict]]:
    """{site: ``verdicts.evaluate_findings`` over the runs' evidence at that site}, at α / len(sites) (see the
    module); findings judged under another intervention than ``spec.intervention`` are left out (not measured)."""
    from nerve.analysis.findings import STATISTICS
    from nerve.analysis.verdicts import evaluate_findings

    alpha = STATISTICS["alpha"] / max(len(sites), 1)
    out = {}
    for site in sites:
        runs = [site_evidence(r.evidence, site, tags, name, spec) for name, r in results.items()]
        found = evaluate_findings(runs, statistics={"alpha": alpha})
        out[site] = [f for f in found if f["ablate"] in (None, spec.intervention)]
    return out


def findings_rows(by_site: dict[str, list[dict]], depths: dict[str, int]) -> list[dict]:
    """``FINDINGS_FIELDS`` rows: per site and finding the verdict (across runs; and within, for these trained
    models), the Holm p that decides it, and the first clause's effect (mean statistic over cases, combined over
    runs) with its interval at the family's level."""
    rows = []
    for site, found in by_site.items():
        for f in found:
            c = f["clauses"][0]
            e = c["effect"]
            ci = e.get("ci") or [None, None]
            pops = {case.get("population") for cl in f["clauses"] for case in cl["cases"]} - {None}
            rows.append({"site": site, "depth": depths[site], "finding": f["number"], "id": f["id"],
                         "ablate": f["ablate"] or "", "verdict": f["verdict"],
                         "within_verdict": f.get("within_verdict", ""), "p_holm": f.get("p"),
                         "statistic": c["statistic"], "effect": e.get("mean"), "ci_low": ci[0], "ci_high": ci[1],
                         "level": e.get("level"), "n_cases": f.get("n_cases"), "n_holding": f.get("n_holding"),
                         "applicable_runs": f["applicable_runs"], "n_runs": f["n_runs"], "alpha": f.get("alpha"),
                         "population": "; ".join(sorted(pops))})
    return rows


def row_label(row: dict) -> str:
    """A findings row's finding as the tables name it: its number, its intervention when it has one, its id
    ("9 (mean) ablation_top_beats_random")."""
    from nerve.analysis.verdicts import finding_label

    return f"{finding_label({'number': row['finding'], 'ablate': row['ablate']})} {row['id']}"
