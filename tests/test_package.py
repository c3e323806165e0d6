"""The package as users get it: a wheel with its presets and rule files, every import declared, plain pytest,
a clean lint, and a wheel that installs into a fresh venv and runs a study from an unrelated folder."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.helpers import small_conll

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, capture_output=True, text=True, timeout=300)
    (found,) = dist.glob("nerve-*.whl")
    return found


def _imports(folder: Path) -> set[str]:
    """Top-level names of every module imported by the .py files under ``folder``."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    local = {p.stem for p in folder.rglob("*.py")}  # scripts importing their neighbours
    return names - set(sys.stdlib_module_names) - local - {"nerve", "tests", "__future__"}


def _declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _distributions(module: str) -> set[str]:
    dists = importlib.metadata.packages_distributions().get(module, [])
    return {d.lower().replace("_", "-") for d in dists}


def test_the_wheel_ships_the_presets_the_rules_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"nerve/py.typed", "nerve/analysis/rules.toml", "nerve/config/presets/xin2019.toml",
            "nerve/config/presets/ncrfpp_best.toml"} <= names


def test_the_wheel_holds_every_file_of_the_package_source(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    src = ROOT / "src"
    tracked = subprocess.run(["git", "ls-files", "src/nerve"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    files = [f for f in tracked if (ROOT / f).is_file()] or [  # a source tree without git: every file but caches
        str(p.relative_to(ROOT)) for p in (src / "nerve").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    missing = sorted(str(Path(f).relative_to("src")) for f in files if str(Path(f).relative_to("src")) not in names)
    assert len(files) > 100 and not missing, missing


def test_every_import_of_the_package_is_a_declared_dependency():
    declared = _declared(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    optional = _declared(extras["ray"]) | _declared(extras["hf"])
    missing = {m for m in _imports(ROOT / "src" / "nerve") if not _distributions(m) & (declared | optional)}
    assert not missing


# Imports of a bench that runs them in an interpreter of its own, never in the project's environment.
OWN_VENV = {"neurox": "bench/compare_neurox_probe.py: NeuroX 1.0.9 pins torch 1.8 and numpy 1.19"}


def test_every_import_of_the_tests_and_benches_is_declared_in_the_test_extra():
    declared = _declared(PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["test"])
    used = _imports(ROOT / "tests") | _imports(ROOT / "bench")
    assert not {m for m in used if not _distributions(m) & declared and m not in OWN_VENV}


def test_an_import_run_in_a_venv_of_its_own_is_never_in_the_projects_environment():
    assert not set(OWN_VENV) & _declared(PYPROJECT["project"]["dependencies"])
    assert not set(OWN_VENV) & _imports(ROOT / "src" / "nerve") and not set(OWN_VENV) & _imports(ROOT / "tests")


def test_seqeval_is_only_a_test_dependency():
    assert "seqeval" not in _declared(PYPROJECT["project"]["dependencies"])
    assert "seqeval" not in _imports(ROOT / "src" / "nerve")


def test_torch_and_ray_take_version_ranges_not_exact_pins():
    reqs = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["ray"]
    assert not [r for r in reqs if "==" in r]


def test_plain_pytest_collects_from_the_repository_root():
    proc = subprocess.run([sys.executable, "-c", "import sys, pytest; sys.exit(pytest.main())", "--collect-only",
                           "-q", "-p", "no:xdist", "tests/test_tags.py"], cwd=ROOT, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_ruff_finds_nothing_in_the_sources_tests_and_benches():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_the_wheel_installs_into_a_fresh_venv_and_runs_a_study_from_another_folder(wheel, tmp_path, shared_data):
    """The wheel alone in a new venv whose dependencies are this environment's (a .pth to its site-packages, which
    Python reads without running their .pth files, so this checkout's editable nerve stays out): what is tested is
    that the wheel carries every module, preset and rule file a study needs. That every import is a declared
    dependency is the test above; installing torch again would only copy it (a minute of the suite)."""
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    here = Path(sysconfig.get_paths()["purelib"])
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text(f"{here}\n", encoding="utf-8")
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], capture_output=True,
                         text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    corpus = small_conll(shared_data / "conll2003", tmp_path / "corpus", train=200, dev=60, test=60)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import nerve; print(nerve.__file__)"], cwd=work,
                           capture_output=True, text=True, env=env, timeout=120)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr  # the wheel's nerve, not the checkout's
    proc = subprocess.run([str(venv / "bin" / "nerve"), "study", "--seeds", "1", "--set", "train.epochs=1",
                           "--methods", "sensitivity,random",  # the default methods' cost is tested elsewhere
                           "--no-figures",  # every file of the package is in the wheel: the test above
                           "--data", str(corpus), "--no-progress"], cwd=work, capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = work / "studies" / "xin2019"
    assert (study / "report.html").is_file()
    assert len(list(study.glob("runs/*/seed*/complete.json"))) == 1


def test_a_study_worker_loads_neither_matplotlib_nor_scipy_optimize_before_it_draws_or_matches():
    """A spawned study worker imports the engine; drawing (matplotlib, ~0.4 s) and unit matching (scipy.optimize,
    ~0.3 s) are imported where they are used, so a worker that trains or analyses without figures never pays."""
    code = ("import sys, nerve.study.engine, nerve.analyze; "
            "print(sorted(m for m in ('matplotlib', 'scipy.optimize') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"
