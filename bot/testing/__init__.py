"""Test helpers shipped with the package: a pytest plugin that reads like a conversation."""

__all__: list[str] = []
