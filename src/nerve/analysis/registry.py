"""A registry of named kinds (sites, bases, methods, interventions): one instance per name, looked up with a
one-line error naming the command-line option and the known names."""

from __future__ import annotations

from typing import Generic, TypeVar

from nerve.errors import NerveError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named instances of one kind (sites, bases, methods, interventions), in registration order.

    ``get(name)`` raises a one-line ``NerveError`` naming the option and the known names."""

    def __init__(self, kind: str, option: str):
        self.kind, self.option = kind, option
        self._items: dict[str, T] = {}

    def register(self, cls: type) -> type:
        """Class decorator: register one instance of ``cls`` under ``cls.name``."""
        item = cls()
        if item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is registered twice")
        self._items[item.name] = item
        return cls

    def add(self, item: T) -> T:
        """Register an instance (one that needs constructor arguments) under its ``name``."""
        if item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is registered twice")
        self._items[item.name] = item
        return item

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> T:
        """The item registered as ``name`` (a one-line ``NerveError`` naming the option and the known names)."""
        if name not in self._items:
            raise NerveError(f"{self.option} {name}: unknown {self.kind}; expected one of {', '.join(self._items)}")
        return self._items[name]
