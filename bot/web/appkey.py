"""Typed keys for the values a console application holds (``app[KEY]``).

A section declares ``KB = AppKey[KnowledgeBase]("editor.kb")`` and reads ``app_of(request)[KB]``;
mypy then knows the value's type, and two sections cannot clash on a plain string name.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["AppKey"]

T = TypeVar("T")


class AppKey(Generic[T]):
    """The key of one typed application value.

    Args:
        name: A dotted name for messages (``"section.thing"``); keys compare by identity.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"AppKey({self.name!r})"
