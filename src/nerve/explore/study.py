"""The explorer over a study: every analysed run of study.json, and per pair of runs of one variant the
one-to-one matching of their units by sensitivity profile (``nerve.analysis.matching.assign_units``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nerve.errors import NerveError
from nerve.explore.data import rounded
from nerve.folder import study_run_folder as run_folder


def study_runs(study_dir: str | os.PathLike) -> list[tuple[str, str, Path]]:
    """(variant, run name, analysis folder) of every run in ``study_dir/study.json`` that has an analysis; run
    folders are found in ``study_dir`` even when the study was copied or moved (``run_folder``).

    Raises:
        NerveError: study.json unreadable, or no run with an analysis.
    """
    d = Path(study_dir)
    try:
        study = json.loads((d / "study.json").read_text(encoding="utf-8"))
        variants = study["variants"]
        out = []
        for variant, v in variants.items():
            for r in v["runs"]:
                run_dir = run_folder(d, r["run_dir"], v)
                if (run_dir / "analysis" / "sensitivity.csv").is_file():
                    out.append((str(variant), run_dir.name, run_dir / "analysis"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise NerveError(f"{d / 'study.json'}: cannot be read as a study (expected variants with runs and their "
                         "run_dir, as `nerve study` writes)") from None
    if not out:
        raise NerveError(f"{d}: no run of the study has an analysis yet; finish the study first")
    return out


def matching(payloads: dict[str, dict], variants: dict[str, list[str]]) -> dict:
    """Per variant the matched unit of every unit of every run in every other run of that variant.

    Args:
        payloads: run id -> ``run_payload`` (tags, units, sensitivity).
        variants: variant -> run ids.

    Returns:
        JSON-ready dict: tags (the first run's order), profiles (run id -> units x tags in that order),
        units (run id -> names), match (run id a -> run id b -> {"unit": [unit of b per unit of a], "corr": [...]}).
    """
    from nerve.analysis.matching import assign_units

    first = next(iter(payloads.values()))
    tags = first["tags"]
    aligned: dict[str, np.ndarray] = {}
    for rid, p in payloads.items():
        if sorted(p["tags"]) != sorted(tags):
            raise NerveError(f"{p['analysis_dir']}: its tags differ from those of {first['analysis_dir']}")
        s = np.array(p["sensitivity"], dtype=np.float64)
        aligned[rid] = s[:, [p["tags"].index(t) for t in tags]]
    match: dict[str, dict] = {rid: {} for rid in payloads}
    for ids in variants.values():
        for a in ids:
            for b in ids:
                if a == b:
                    continue
                try:
                    rows, cols, C = assign_units(aligned[a], aligned[b])
                except ValueError:
                    continue  # fewer than two tags with sensitivities in both runs: nothing to match on
                unit = np.full(len(aligned[a]), -1)
                unit[rows] = cols
                corr = np.full(len(aligned[a]), np.nan)
                corr[rows] = C[rows, cols]
                match[a][b] = {"unit": unit.tolist(), "corr": rounded(corr, 3)}
    return {"tags": tags, "profiles": {rid: rounded(s, 4) for rid, s in aligned.items()},
            "units": {rid: p["units"] for rid, p in payloads.items()}, "match": match, "variants": variants}
