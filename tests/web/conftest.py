"""The console fixtures (see :mod:`bot.testing.console`)."""

from bot.testing.console import *  # noqa: F403
