"""What the package index and `pip show` see: `nerve --version`, an MIT licence shipped in the wheel, classifiers,
and a package description (docs/PACKAGE.md) that says nothing of the machine nerve is developed on."""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import nerve
from tests.helpers import cli

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_version_prints_nerve_and_the_package_version():
    res = cli("--version")
    assert res.returncode == 0 and res.stdout == f"nerve {nerve.__version__}\n" and res.stderr == ""
    assert nerve.__version__ == PROJECT["version"]


def test_the_licence_is_mit_and_declared():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "nerve contributors" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # an SPDX licence forbids them


def test_the_package_description_is_not_this_repositorys_readme():
    assert PROJECT["readme"] == "docs/PACKAGE.md"
    text = (ROOT / PROJECT["readme"]).read_text(encoding="utf-8")
    assert "pip install nerve" in text and "nerve --version" in text
    for local in ("torch==", "../shared", "this machine", "on this machine", "-e '.[test]'"):
        assert local not in text, local
    for command in ("study", "train", "evaluate", "decode", "analyze", "compare", "explore", "serve", "plot",
                    "data", "export-activations"):
        assert f"`nerve {command}" in text, command


@pytest.fixture(scope="module")
def metadata(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist)], check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = dist.glob("nerve-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf-8")
    return names, email.message_from_string(meta)


def test_the_wheel_carries_the_licence_classifiers_and_the_package_description(metadata):
    names, meta = metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert meta["License-Expression"] == "MIT"
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "docs" / "PACKAGE.md").read_text(encoding="utf-8").strip()
