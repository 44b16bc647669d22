"""``python -m bot.edge``: see :mod:`bot.edge.server`."""

from __future__ import annotations

import sys

from bot.edge.server import main

sys.exit(main())
