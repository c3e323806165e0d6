"""A study's plan: its jobs (config variant × seed, each with its run folder and fingerprint), the grid and
the settings of some grid cells."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from nerve.config import Config, apply_overrides, load_config
from nerve.errors import NerveError
from nerve.folder import fingerprint
from nerve.run import run_identity

ANALYSIS_SPLIT = "test"  # the scoring split: the base analysis and the methods' held-out ablation sweeps
RANK_SPLIT = "dev"  # the split the ranking methods rank on
# Every method but the probe (20 s a run on xin2019: docs/RESULTS.md); `--methods` adds it.
STUDY_METHODS = ("sensitivity", "probeless", "selectivity", "gradxact", "ig", "random")
STUDY_ABLATE = ("zero", "mean")
STUDY_FIGURES = ("png",)  # the report embeds PNG; `nerve plot analysis --formats svg` draws SVG for a paper


@dataclass
class Job:
    """One run of a study: a config variant and a seed."""

    variant: str  # "base" or "key=value,key=value"
    overrides: list[str]  # --set items (study-wide ones first, then the grid values)
    seed: int
    config_path: str
    data_dir: str | None
    run_dir: str
    fingerprint: str = ""  # of the run this job must produce (``nerve.run.run_identity``)
    threads: int = 1
    device: str = "cpu"
    methods: list[str] = field(default_factory=lambda: list(STUDY_METHODS))  # ranking methods judged held out
    ablate: list[str] = field(default_factory=lambda: list(STUDY_ABLATE))
    max_k: int | None = None  # largest ablation size of the analysis; None: every unit
    figures: bool = True  # the analysis draws its figures (``STUDY_FIGURES``); else tables only
    recipe: list[str] = field(default_factory=list)  # the --cell-set items of its grid cell (also in overrides)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def config(self) -> Config:
        """The job's resolved config (data paths made absolute)."""
        from nerve.data.prepare import resolve_data

        return resolve_data(load_config(self.config_path, self.overrides), self.data_dir)


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2`` strings -> [(key, [v1, v2])], checked against the config schema."""
    grid = []
    for item in items:
        if "=" not in item:
            raise NerveError(f"--grid {item!r}: expected section.key=v1,v2,...")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise NerveError(f"--grid {item!r}: no values")
        if key.strip() in (k for k, _ in grid):
            raise NerveError(f"--grid {item!r}: {key.strip()} is already a --grid key (give its values once)")
        if len(set(vals)) < len(vals):
            raise NerveError(f"--grid {item!r}: a value is given twice")
        for v in vals:
            _check_setting(f"{key.strip()}={v}", f"--grid {item!r}")
        grid.append((key.strip(), vals))
    return grid


def _check_setting(setting: str, where: str) -> None:
    """Type check one ``section.key=value`` now, the error naming the option it came from."""
    try:
        apply_overrides(Config(), [setting])
    except NerveError as e:
        raise NerveError(f"{where}: {str(e).removeprefix('--set: ')}") from None


def parse_cell_sets(items: list[str], grid: list[tuple[str, list[str]]]) -> list[tuple[str, str, str]]:
    """``--cell-set GRIDKEY=VALUE:SECTION.KEY=VALUE`` items as (grid key, grid value, --set item): settings for the
    grid cells where that grid key has that value (e.g. a word-CNN recipe), applied after the grid's values."""
    values = dict(grid)
    out = []
    for item in items:
        cond, sep, setting = item.partition(":")
        key, eq, value = cond.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not eq or "=" not in setting:
            raise NerveError(f"--cell-set {item!r}: expected GRIDKEY=VALUE:SECTION.KEY=VALUE, e.g. "
                             "model.encoder=cnn:train.lr=0.1")
        if key not in values:
            raise NerveError(f"--cell-set {item!r}: {key} is not a --grid key (the grid has "
                             f"{', '.join(values) or 'none'})")
        if value not in values[key]:
            raise NerveError(f"--cell-set {item!r}: {value!r} is not one of the grid's values of {key} "
                             f"({', '.join(values[key])})")
        target = setting.partition("=")[0].strip()
        if target in values or target == "train.seed":
            raise NerveError(f"--cell-set {item!r}: {target} cannot be a cell's setting (it names the cell or its "
                             "seed; give grid values with --grid)")
        _check_setting(setting.strip(), f"--cell-set {item!r}")
        out.append((key, value, setting.strip()))
    return out


def variant_name(assignment: list[tuple[str, str]]) -> str:
    if not assignment:
        return "base"
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignment)


def folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)


def plan(config_path: str, data_dir: str | None, seeds: int, out: Path, overrides: list[str],
         grid: list[tuple[str, list[str]]], base_seed: int | None = None,
         cell_sets: list[tuple[str, str, str]] = ()) -> list[Job]:
    """Every (variant, seed) job of a study, in a stable order; ``cell_sets`` (``parse_cell_sets``) add settings
    to the cells they match, after the grid's values."""
    cfg = load_config(config_path, overrides)  # validates the config and overrides before any work starts
    first = cfg.train.seed if base_seed is None else base_seed
    keys = [k for k, _ in grid]
    jobs = []
    for values in itertools.product(*[v for _, v in grid]) if grid else [()]:
        assignment = list(zip(keys, values))
        name = variant_name(assignment)
        recipe = list(dict.fromkeys(setting for key, value, setting in cell_sets if dict(assignment).get(key) == value))
        keys_set = [setting.split("=", 1)[0].strip() for setting in recipe]
        clash = sorted({k for k in keys_set if keys_set.count(k) > 1})
        if clash:
            raise NerveError(f"grid cell {name}: --cell-set items give {clash[0]} different values: "
                             + ", ".join(x for x in recipe if x.split("=", 1)[0].strip() == clash[0]))
        for i in range(seeds):
            seed = first + i
            sets = overrides + [f"{k}={v}" for k, v in assignment] + recipe + [f"train.seed={seed}"]
            run_dir = out / "runs" / folder_name(name) / f"seed{seed}"
            job = Job(name, sets, seed, str(Path(config_path).resolve()),
                      str(Path(data_dir).resolve()) if data_dir else None, str(run_dir.resolve()))
            try:
                job.fingerprint = fingerprint(run_identity(job.config()))
            except NerveError as err:  # a combination of settings no single option shows
                if not assignment:
                    raise
                raise NerveError(f"grid cell {name}: {str(err).removeprefix('--set: ')}") from None
            job.figures = i == 0  # the first seed of each variant; `nerve plot analysis` draws any other's
            job.recipe = recipe
            jobs.append(job)
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.run_dir, job)
        if other is not job:
            raise NerveError(f"--grid: variants {other.variant!r} and {job.variant!r} would share the run folder "
                             f"{job.run_dir} (their values differ only in characters a folder name cannot hold)")
    return jobs
