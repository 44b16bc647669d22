"""The console fixtures for the security tests (see :mod:`bot.testing.console`)."""

from bot.testing.console import *  # noqa: F403
