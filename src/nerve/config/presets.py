"""The config presets shipped inside the package (``xin2019``, ``ncrfpp_best``), found through importlib.resources."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nerve.errors import NerveError

PRESETS = resources.files("nerve.config") / "presets"


def preset_names() -> list[str]:
    """The names of the packaged presets, sorted."""
    return sorted(p.name[:-5] for p in PRESETS.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``."""
    item = PRESETS / f"{name}.toml"
    if not item.is_file():
        raise NerveError(f"{name}: no such preset (presets: {', '.join(preset_names()) or 'none found'})")
    return item.read_text(encoding="utf-8")


def resolve_config(name: str) -> str:
    """A config path as given, or the file of a packaged preset (``xin2019`` -> .../presets/xin2019.toml).

    Raises:
        NerveError: neither a file nor a preset name; the message lists the presets.
    """
    if Path(name).is_file():
        return name
    item = PRESETS / f"{name}.toml"
    if item.is_file():
        return str(item)  # an installed package (wheel or editable) keeps its data files on disk
    if Path(name).suffix in (".toml", ".config") or "/" in name:
        raise NerveError(f"{name}: no such config file")
    raise NerveError(f"{name}: no such config file or preset (presets: {', '.join(preset_names()) or 'none found'})")
