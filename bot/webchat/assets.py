"""The web chat widget's files (``bot/webchat/static/``) and their size on the wire.

The benchmark reports ``widget_kb_compressed`` from :func:`widget_size_gzip`; the issue's
target is under 30 KB for the script and stylesheet together.
"""

from __future__ import annotations

import gzip
from pathlib import Path

__all__ = ["STATIC", "WIDGET_FILES", "widget_size_gzip"]

STATIC = Path(__file__).parent / "static"
"""The folder the edge serves at ``/webchat/``."""
WIDGET_FILES = ("widget.js", "widget.css")
"""What a council page loads: the script, which then links the stylesheet."""


def widget_size_gzip() -> int:
    """Bytes of ``widget.js`` and ``widget.css`` each gzip-compressed (level 9), added up."""
    return sum(
        len(gzip.compress((STATIC / name).read_bytes(), compresslevel=9, mtime=0))
        for name in WIDGET_FILES
    )
