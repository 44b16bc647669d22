"""Run the whole assistant with one command: ``python -m bot.run`` (``make run``).

Checks the configuration, connects to ``REDIS_URL`` or starts an embedded Redis under
``.data/redis``, then starts the action server and the Rasa server (HTTP API with its token;
both on the internal address only; ``--rasa-workers N`` starts N Rasa workers sharing the inbox,
the first one's API on ``--rasa-port`` for the console), the public edge (residents'
webhooks), the web console and the sample council site with the web chat on it (on
``127.0.0.1:8001``, when the profile's ``webchat.allowed_origins`` allows it;
``--no-sample-site`` leaves it out), and prints where to reach them. ``--chat`` adds a terminal
chat over Rasa's REST channel, which only the demo credentials open, on loopback.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import urllib.request
import uuid
from pathlib import Path
from types import FrameType

from bot import settings
from bot.channels.accounts import load_credentials
from bot.config import check_config, check_endpoints
from bot.demo import seed
from bot.errors import CouncilError
from bot.profile import CouncilProfile
from bot.redis_conn import EmbeddedRedis, connect, masked, start_embedded
from bot.services import (
    ROOT,
    Service,
    action_server_argv,
    base_env,
    edge_argv,
    rasa_server_argv,
    start_service,
)
from bot.webchat.config import WebChatConfig

__all__ = ["SAMPLE_SITE", "main", "sample_site_argv"]

DATA_DIR = ROOT / ".data"
MODEL = ROOT / "models" / "council.tar.gz"
SAMPLE_SITE = "http://127.0.0.1:8001"
"""The sample council site's origin (the demo profile's ``webchat.allowed_origins`` has it)."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.run", description=__doc__)
    parser.add_argument("--chat", action="store_true", help="chat with the assistant here")
    parser.add_argument(
        "--credentials",
        type=Path,
        default=ROOT / "credentials.demo.yml",
        help="channels to open (credentials.yml for the four resident channels)",
    )
    parser.add_argument(
        "--rasa-port",
        type=int,
        default=5005,
        help="the first Rasa worker's HTTP API (the console's); the others take the next ports",
    )
    parser.add_argument(
        "--rasa-workers",
        type=_positive,
        default=1,
        help="Rasa worker processes sharing the inbox (about one per core; docs/deploy.md)",
    )
    parser.add_argument("--actions-port", type=int, default=5055)
    parser.add_argument("--console-port", type=int, default=8080)
    parser.add_argument("--reports-port", type=int, default=8312, help="reports worker health")
    parser.add_argument(
        "--edge-host",
        default="127.0.0.1",
        help="where the public edge listens (the internet-facing interface in production)",
    )
    parser.add_argument("--edge-port", type=int, default=8000)
    parser.add_argument("--no-console", action="store_true", help="do not start the web console")
    parser.add_argument(
        "--no-sample-site",
        action="store_true",
        help=f"do not start the sample council site with the web chat ({SAMPLE_SITE})",
    )
    parser.add_argument(
        "--no-demo",
        dest="demo",
        action="store_false",
        help="do not load the demo council's bin schedules and knowledge base",
    )
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def _redis(url: str) -> tuple[str, EmbeddedRedis | None]:
    if url:
        connect(url).close()
        return url, None
    embedded = start_embedded(DATA_DIR / "redis")
    return embedded.url, embedded


def _reachable(host: str) -> str:
    """An address this machine can reach a server on that listens on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 (comparison)


def sample_site_argv(webchat: WebChatConfig | None, edge_url: str) -> list[str] | None:
    """The command serving the sample council site with the web chat from ``edge_url``.

    None when the profile has no web chat or does not allow the site's origin (its widget
    would be refused).
    """
    if webchat is None or not webchat.allows(SAMPLE_SITE):
        return None
    port = SAMPLE_SITE.rsplit(":", 1)[1]
    return [
        *(sys.executable, "-m", "bot.webchat.sample", "--edge", edge_url),
        *("--council", webchat.council_id, "--port", port),
    ]


def chat(rasa_url: str) -> None:
    """A terminal chat over the REST channel until end of input or ``/quit``."""
    sender = f"terminal-{uuid.uuid4().hex[:8]}"
    print("Type a message (or /quit).")
    while True:
        try:
            text = input("you> ")
        except EOFError:
            return
        if text.strip() == "/quit":
            return
        body = json.dumps({"sender": sender, "message": text}).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback URL we built)
            f"{rasa_url}/webhooks/rest/webhook", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            replies = json.load(response)
        if not replies:  # Rasa logs why (a response it could not render, an action error)
            log = (DATA_DIR / "logs" / "rasa.log").relative_to(ROOT)
            print(f"bot> (no reply: the Rasa server's log, {log}, says why)")
        for reply in replies:
            if "text" in reply:
                print(f"bot> {reply['text']}")
            for number, button in enumerate(reply.get("buttons", []), start=1):
                print(f"     {number}. {button.get('title')}")


def main(argv: list[str] | None = None) -> int:
    """Start everything; return the exit code."""
    args = _parse_args(argv)
    services: list[Service] = []
    embedded: EmbeddedRedis | None = None

    def stop(signum: int = 0, frame: FrameType | None = None) -> None:
        for service in reversed(services):
            service.stop()
        if embedded is not None:
            embedded.stop()

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        configured = settings.current()
        check_config(ROOT / "config.yml")
        if not MODEL.exists():
            print(f"No trained model at {MODEL}: run `make train` first.", file=sys.stderr)
            return 2
        rest = "rest" in load_credentials(args.credentials)
        if args.chat and not rest:
            print(
                f"--chat needs Rasa's REST channel, which {args.credentials} does not open "
                "(credentials.demo.yml does, on loopback only).",
                file=sys.stderr,
            )
            return 2
        redis_url, embedded = _redis(configured.redis_url)
        internal = configured.internal_host
        env = base_env(
            REDIS_URL=redis_url,
            ACTION_SERVER_URL=f"http://{internal}:{args.actions_port}/webhook",
            RASA_URL=f"http://{internal}:{args.rasa_port}",
            RASA_AUTH_TOKEN=configured.rasa_auth_token or secrets.token_urlsafe(24),
            # A per-run random key is safe for the demo: sessions simply end with the run.
            COUNCIL_SECRET_KEY=configured.secret_key or secrets.token_urlsafe(32),
            # DEVELOPMENT ONLY when unset: a per-run random web chat secret (open chats end
            # with the run); production sets COUNCIL_WEBCHAT_SECRET (docs/configuration.md).
            COUNCIL_WEBCHAT_SECRET=configured.webchat_secret or secrets.token_urlsafe(32),
            # The bot's calendar links point at this console unless a public URL is configured.
            COUNCIL_PUBLIC_URL=configured.public_url or f"http://127.0.0.1:{args.console_port}",
            # Problem reports' photos: the action server fetches them with the channels'
            # credentials, the edge serves them by signed address (docs/reports.md); the
            # per-run key ends the demo's photo addresses with the run.
            COUNCIL_CREDENTIALS=str(configured.credentials_path or args.credentials),
            COUNCIL_MEDIA_KEY=configured.media_key or secrets.token_urlsafe(32),
            COUNCIL_MEDIA_URL=configured.media_url
            or f"http://{_reachable(args.edge_host)}:{args.edge_port}",
        )
        check_endpoints(ROOT / "endpoints.yml", env)  # ${...} as the Rasa server will expand them
        logs = DATA_DIR / "logs"
        print(f"Redis: {masked(redis_url)}{' (embedded)' if embedded else ''}")
        if args.demo:
            print(seed(redis_url, configured.namespace))
        services.append(
            start_service(
                "actions",
                action_server_argv(args.actions_port),
                ready_url=f"http://{internal}:{args.actions_port}/health",
                env=env,
                log_dir=logs,
            )
        )
        for index in range(args.rasa_workers):  # one after the other: each loads the model
            port = args.rasa_port + index
            services.append(
                start_service(
                    "rasa" if index == 0 else f"rasa-{index}",
                    rasa_server_argv(
                        model=MODEL,
                        port=port,
                        credentials=args.credentials,
                        endpoints=ROOT / "endpoints.yml",
                        auth_token=env["RASA_AUTH_TOKEN"],
                    ),
                    ready_url=f"http://{internal}:{port}/status?token={env['RASA_AUTH_TOKEN']}",
                    env=env,
                    log_dir=logs,
                    timeout=300,
                )
            )
        edge_url = f"http://{_reachable(args.edge_host)}:{args.edge_port}"
        services.append(
            start_service(
                "edge",
                edge_argv(host=args.edge_host, port=args.edge_port, credentials=args.credentials),
                ready_url=f"{edge_url}/health",
                env=env,
                log_dir=logs,
            )
        )
        profile = CouncilProfile.load(configured.profile_path)
        sample = None if args.no_sample_site else sample_site_argv(profile.webchat, edge_url)
        if sample is not None:
            services.append(
                start_service(
                    "sample-site", sample, ready_url=SAMPLE_SITE + "/", env=env, log_dir=logs
                )
            )
        if profile.reports is not None:
            # problem reports to the back office (the demo's Open311 stand-in with --demo)
            services.append(
                start_service(
                    "reports",
                    [sys.executable, "-m", "bot.reports", "--port", str(args.reports_port)]
                    + (["--stand-in"] if args.demo else []),
                    ready_url=f"http://127.0.0.1:{args.reports_port}/health",
                    env=env,
                    log_dir=logs,
                )
            )
        if not args.no_console:
            services.append(
                start_service(
                    "console",
                    [sys.executable, "-m", "bot.web", "--port", str(args.console_port)],
                    ready_url=f"http://127.0.0.1:{args.console_port}/login",
                    env=env,
                    log_dir=logs,
                )
            )
        rasa_url = env["RASA_URL"]
        print("Assistant ready.")
        print(f"Edge (residents' webhooks): {edge_url}/webhooks/<channel>/webhook")
        if not configured.webchat_secret:
            print(
                "Web chat: DEVELOPMENT secret, random for this run (COUNCIL_WEBCHAT_SECRET unset)"
            )
        print(f"Web chat: {edge_url}/webchat/widget.js")
        if sample is not None:
            print(f"Sample council site with the web chat: {SAMPLE_SITE}/")
        elif not args.no_sample_site:
            print(f"Sample council site: not started (webchat.allowed_origins lacks {SAMPLE_SITE})")
        if rest:
            print(f"REST channel (internal address only): POST {rasa_url}/webhooks/rest/webhook")
            print(
                '  e.g. curl -s -XPOST -d \'{"sender":"me","message":"when is my bin day?"}\' '
                f"{rasa_url}/webhooks/rest/webhook"
            )
        if not args.no_console:
            print(
                f"Web console: http://127.0.0.1:{args.console_port}/ (create an admin: "
                f"REDIS_URL={masked(redis_url)} "
                ".venv/bin/python -m bot.web.users create-admin <name>)"
            )
        print(f"Logs: {logs} (problem reports arriving at the demo's Open311: reports.log)")
        if args.chat:
            chat(rasa_url)
        else:
            print("Press Ctrl-C to stop.")
            services[-1].process.wait()
        return 0
    except CouncilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
