"""The web console: editors maintain the knowledge base, agents answer handed-off residents.

Start it with ``python -m bot.web``; build on it through :mod:`bot.web.app`.
"""

__all__: list[str] = []
