"""A study's plan: its jobs (config variant × seed, each with its run folder and fingerprint), the grid and
the settings of some grid cells."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from nerve.analysis.core import AnalysisSpec
from nerve.config import Config, apply_overrides, load_config
from nerve.errors import NerveError
from nerve.folder import fingerprint
from nerve.run import run_identity

ANALYSIS_SPLIT = "test"  # the scoring split: the base analysis and the methods' held-out ablation sweeps
RANK_SPLIT = "dev"  # the split the ranking methods rank on
# Every method but the probe (20 s a run on xin2019: docs/RESULTS.md); `--methods` adds it.
STUDY_METHODS = ("sensitivity", "probeless", "selectivity", "gradxact", "ig", "ig_mean", "random")
STUDY_ABLATE = ("zero", "mean")
STUDY_DRAWS = (1000, 100)  # random sets at the judged ks (p down to 1/1,001) and matched sets at k = 10
STUDY_FIGURES = ("png",)  # the report embeds PNG; `nerve plot analysis --formats svg` draws SVG for a paper
MAX_SEEDS = 1000


def study_analysis(methods: Sequence[str] | None = None, ablate: Sequence[str] | None = None,
                   max_k: int | None = None, sufficiency: bool = False,
                   draws: tuple[int, int] = STUDY_DRAWS) -> AnalysisSpec:
    """The analysis every run of a study gets: on ``ANALYSIS_SPLIT``, with the ranking ``methods`` (default
    ``STUDY_METHODS``; () for none) ranked on ``RANK_SPLIT`` and judged with the ``ablate`` interventions
    (default ``STUDY_ABLATE``) and, with ``sufficiency``, also by keeping the top k alone, against ``draws``
    (judged, matched) random unit sets (default ``STUDY_DRAWS``); figures in ``STUDY_FIGURES``."""
    methods = STUDY_METHODS if methods is None else tuple(methods)
    if not methods:
        return AnalysisSpec(split=ANALYSIS_SPLIT, max_k=max_k, figures=STUDY_FIGURES, sufficiency=sufficiency)
    return AnalysisSpec(split=ANALYSIS_SPLIT, max_k=max_k, methods=methods, rank_split=RANK_SPLIT,
                        interventions=STUDY_ABLATE if ablate is None else tuple(ablate), sufficiency=sufficiency,
                        judged_draws=draws[0], matched_draws=draws[1], figures=STUDY_FIGURES)


@dataclass(frozen=True)
class StudySpec:
    """What a study is, validated once: the ``config`` (file or preset path) on the ``data`` corpus folder,
    ``seeds`` runs per variant (seeds from the config's train.seed on), written under ``out``; ``settings``
    (``--set`` items for every run), ``grid`` (``key=v1,v2`` items: one variant per combination), ``cell_sets``
    (``GRIDKEY=VALUE:SECTION.KEY=VALUE`` items: settings of some grid cells), and the ``analysis`` of every run
    (``study_analysis``).

    Raises:
        NerveError: a bad option, naming it (before any folder is made)."""

    config: str
    data: str | None
    out: str
    seeds: int = 10
    settings: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()
    cell_sets: tuple[str, ...] = ()
    analysis: AnalysisSpec = field(default_factory=study_analysis)
    bases: tuple[str, ...] = ()  # more bases each run is analysed in (``analysis/bases/NAME``), beside neurons

    def __post_init__(self) -> None:
        for name in ("settings", "grid", "cell_sets", "bases"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise NerveError(f"--seeds {self.seeds}: expected a number in 1..{MAX_SEEDS}")
        load_config(self.config, list(self.settings))  # bad options stop here, before the study folder is made
        parse_cell_sets(list(self.cell_sets), parse_grid(list(self.grid)))
        for b in self.bases:
            self.analysis.replace(basis=b)  # an unknown basis stops here
        if self.bases and not self.analysis.methods:
            raise NerveError(f"--basis {','.join(self.bases)}: the bases are compared by the --methods sweeps; give "
                             "--methods")

    def axes(self) -> list[tuple[str, list[str]]]:
        """The grid as (key, values) pairs (``parse_grid``)."""
        return parse_grid(list(self.grid))

    def cells(self) -> list[tuple[str, str, str]]:
        """The cell settings as (grid key, grid value, --set item) (``parse_cell_sets``)."""
        return parse_cell_sets(list(self.cell_sets), self.axes())

    def setup(self) -> dict:
        """What study.json and plan.json record of the study: config, corpus, seeds, settings, grid, cell sets."""
        return {"config": str(self.config), "data": self.data, "seeds": self.seeds, "settings": list(self.settings),
                "grid": self.axes(), "cell_sets": self.cells()}


@dataclass(frozen=True)
class Job:
    """One run of a study: a config variant and a seed, with everything its worker needs (frozen: made once, by
    ``plan``)."""

    variant: str  # "base" or "key=value,key=value"
    overrides: list[str]  # --set items (study-wide ones first, then the grid values)
    seed: int
    config_path: str
    data_dir: str | None
    run_dir: str
    fingerprint: str = ""  # of the run this job must produce (``nerve.run.run_identity``)
    analysis: AnalysisSpec = field(default_factory=study_analysis)  # the run's analysis (figures: first seed)
    recipe: list[str] = field(default_factory=list)  # the --cell-set items of its grid cell (also in overrides)
    bases: list[str] = field(default_factory=list)  # more bases, each analysed into analysis/bases/NAME
    device: str = "cpu"
    threads: int = 1

    def basis_analyses(self) -> list[tuple[str, AnalysisSpec]]:
        """(folder under the run, spec) of each basis beside neurons: ``analysis/bases/NAME``, without figures."""
        return [(f"analysis/bases/{b}", self.analysis.replace(basis=b, leace=False, figures=())) for b in self.bases]

    def to_dict(self) -> dict:
        """JSON-ready (plan.json, worker processes, Ray tasks); ``from_dict`` reads it back."""
        return {**self.__dict__, "analysis": self.analysis.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Job:
        """A job of ``to_dict``, or of an older plan.json (its methods, ablate, max_k and figures keys)."""
        d = dict(d)
        old = {k: d.pop(k) for k in ("methods", "ablate", "max_k", "figures") if k in d}
        analysis = d.pop("analysis", None)
        if isinstance(analysis, dict):
            spec = AnalysisSpec(**analysis)
        else:
            spec = study_analysis(old.get("methods"), old.get("ablate"), old.get("max_k"))
            spec = spec if old.get("figures", True) else spec.replace(figures=())
        return cls(**d, analysis=spec)

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
        if key.strip() == "train.seed":
            raise NerveError(f"--grid {item!r}: train.seed cannot be a grid key (the study gives every run its seed: "
                             "--seeds N runs seeds train.seed .. train.seed+N-1; set the first with --set "
                             "train.seed=S)")
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


def plan(spec: StudySpec, placement: tuple[str, int] = ("cpu", 1), base_seed: int | None = None) -> list[Job]:
    """Every (variant, seed) job of a study, in a stable order; its cell settings are added to the cells they
    match, after the grid's values. ``placement``: the device and torch threads of every run; ``base_seed``:
    the first seed (default: the config's train.seed). Makes no folder."""
    overrides = list(spec.settings)
    cfg = load_config(spec.config, overrides)  # validates the config and overrides before any work starts
    first = cfg.train.seed if base_seed is None else base_seed
    grid, cell_sets = spec.axes(), spec.cells()
    out = Path(spec.out).resolve()
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
        for i in range(spec.seeds):
            seed = first + i
            sets = overrides + [f"{k}={v}" for k, v in assignment] + recipe + [f"train.seed={seed}"]
            run_dir = out / "runs" / folder_name(name) / f"seed{seed}"
            analysis = spec.analysis if i == 0 else spec.analysis.replace(figures=())  # `nerve plot analysis`
            job = Job(name, sets, seed, str(Path(spec.config).resolve()),
                      str(Path(spec.data).resolve()) if spec.data else None, str(run_dir.resolve()),
                      analysis=analysis, recipe=recipe, bases=list(spec.bases), device=placement[0],
                      threads=placement[1])
            try:
                jobs.append(replace(job, fingerprint=fingerprint(run_identity(job.config()))))
            except NerveError as err:  # a combination of settings no single option shows
                if not assignment:
                    raise
                raise NerveError(f"grid cell {name}: {str(err).removeprefix('--set: ')}") from None
    seen: dict[str, Job] = {}
    for job in jobs:
        other = seen.setdefault(job.run_dir, job)
        if other is not job:
            raise NerveError(f"--grid: variants {other.variant!r} and {job.variant!r} would share the run folder "
                             f"{job.run_dir} (their values differ only in characters a folder name cannot hold)")
    same: dict[str, Job] = {}
    for job in jobs:  # one model is one run: two grid cells that resolve to one config would count it twice
        other = same.setdefault(job.fingerprint, job)
        if other is not job:
            raise NerveError(f"--grid: variants {other.variant!r} and {job.variant!r} resolve to the same config "
                             f"(seed {job.seed} trains one model twice, which would count as two architectures); "
                             "give each value once")
    return jobs
