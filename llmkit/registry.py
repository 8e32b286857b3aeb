"""A tiny name -> object registry shared by tasks, metrics and model presets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from llmkit.errors import LlmkitError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            self._items[name] = item
            return item

        return add

    def add(self, name: str, item: T) -> T:
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "none"
            raise LlmkitError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
