"""nerve: train neural NER taggers and analyse them neuron by neuron.

The public API (docs/API.md): ``fit``, ``load_run`` (a ``Run``: ``tag``, ``activations``, ``intervene``,
``analyze``), ``load_study`` (a ``Study``: ``to_pandas``), ``AnalysisSpec`` and the registries ``SITES``,
``BASES``, ``METHODS``, ``INTERVENTIONS``. They load on first use, so that ``import nerve`` and the command line
start without torch (measured in docs/RESULTS.md, issue 28).
"""

__version__ = "0.1.0"
# Bumped whenever the checkpoint layout changes; checkpoints record it.
FORMAT_VERSION = 1

_API = {"fit": "nerve.api", "load_run": "nerve.api", "load_study": "nerve.api", "Run": "nerve.api",
        "Study": "nerve.api", "Activations": "nerve.api", "AnalysisResult": "nerve.api", "HFRun": "nerve.api",
        "AnalysisSpec": "nerve.analysis.core", "SITES": "nerve.analysis.core", "BASES": "nerve.analysis.core",
        "METHODS": "nerve.analysis.core", "INTERVENTIONS": "nerve.analysis.core", "Method": "nerve.analysis.core",
        "Intervention": "nerve.analysis.core", "Basis": "nerve.analysis.core", "Site": "nerve.analysis.core",
        "NerveError": "nerve.errors"}
__all__ = ["FORMAT_VERSION", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nerve' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
