"""Residents' rights under UK GDPR: export and erase what is held about a resident.

``python -m bot.residents export|erase <conversation id, phone, email or case id>`` and
``sweep`` (retention periods); the functions live in :mod:`bot.residents.rights` so the console
can call them too.
"""

from bot.residents.rights import (
    Erasure,
    Layout,
    Resident,
    Retention,
    erase,
    export,
    find,
    leftovers,
    sweep,
)

__all__ = [
    "Erasure",
    "Layout",
    "Resident",
    "Retention",
    "erase",
    "export",
    "find",
    "leftovers",
    "sweep",
]
