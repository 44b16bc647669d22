"""The public edge: the only process that faces the internet for residents' channels.

It serves the webhooks (``/webhooks/<channel>/webhook``) on Starlette and uvicorn, libraries
the project keeps current in ``requirements/deps.lock`` (Rasa does not pin them), and does size
limit, signature check, parse and the durable Redis inbox, nothing else. The Rasa server and
the action server listen only on a private address; the inbox worker inside the Rasa server
feeds Rasa from the inbox. :mod:`bot.edge.app` is the application, :mod:`bot.edge.server`
the command (``python -m bot.edge``); the slow-client guard is :mod:`bot.http_server`, shared
with the console.
"""

from __future__ import annotations

__all__: list[str] = []
