"""Serve the sample council site for a demo: ``python -m bot.webchat.sample --edge URL``."""

from __future__ import annotations

import argparse

import uvicorn

from bot import profile
from bot.webchat.sample import sample_site


def main(argv: list[str] | None = None) -> None:
    """Serve the sample site on loopback (the edge must allow its origin in the profile)."""
    parser = argparse.ArgumentParser(prog="python -m bot.webchat.sample", description=__doc__)
    parser.add_argument("--edge", default="http://127.0.0.1:8000", help="the edge's origin")
    parser.add_argument("--council", help="webchat.council_id (default: the council profile's)")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    if args.council is None:
        webchat = profile.current().webchat
        if webchat is None:
            parser.error("the council profile has no webchat section: give --council")
        args.council = webchat.council_id
    print(f"Sample council site: http://127.0.0.1:{args.port}/ (chat from {args.edge})")
    app = sample_site(args.edge, args.council)
    # ws="none": Rasa pins a websockets older than uvicorn's auto-detected protocol needs
    uvicorn.run(app, host="127.0.0.1", port=args.port, ws="none")


if __name__ == "__main__":
    main()
