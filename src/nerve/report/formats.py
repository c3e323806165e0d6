"""The figure formats a block of code writes (``figure_formats``), apart from matplotlib: what deciding whether and
how to draw needs, without importing the drawing itself."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

FORMATS = ("png", "svg", "pdf")  # every format a figure can be written in, and what save_figure writes by default
_formats: ContextVar[tuple[str, ...]] = ContextVar("figure_formats", default=FORMATS)


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """``formats`` as a tuple, each one of ``FORMATS``.

    Raises:
        ValueError: naming the formats that are not.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"figure formats: expected some of {', '.join(FORMATS)}, got {', '.join(bad)}")
    return tuple(formats)


@contextmanager
def figure_formats(formats: Sequence[str]) -> Iterator[None]:
    """Within the block, ``save_figure`` writes ``formats`` (some of png, svg, pdf) by default."""
    token = _formats.set(check_formats(formats))
    try:
        yield
    finally:
        _formats.reset(token)


def formats_in_use() -> tuple[str, ...]:
    """The formats ``save_figure`` writes by default here (``figure_formats``' block, else every one)."""
    return _formats.get()


def when_drawn(plot: Callable[..., list]) -> Callable[..., list]:
    """A figure function that builds nothing and returns [] inside ``figure_formats(())`` (tables only): no figure
    is laid out for no file."""

    @functools.wraps(plot)
    def draw(*args, **kwargs) -> list:
        return plot(*args, **kwargs) if formats_in_use() else []

    return draw
