"""``python -m bot.reports``: deliver problem reports and send their updates back.

Runs, each under :func:`bot.channels.supervisor.supervised`: the :class:`ReportWorker`
(``{ns}:reports:outbox`` to the profile's back office), and for Open311 councils the
:class:`UpdatePoller` (every ``reports.open311.poll_minutes``) and :class:`PushedUpdates`
(what the edge's ``/reports/updates`` received). ``GET /health`` on ``--port`` (loopback)
answers 200 once they run, with counts only: reports queued, retrying and failed, requests
followed. Messages held for closed messaging windows are released by the channels' process
(:class:`bot.channels.held.HeldMessages`), not here. ``--stand-in`` also serves the local
Open311 stand-in at the profile's endpoint when it is on loopback (the demo: ``make run``
shows reports arriving in ``.data/logs/reports.log``). Any number of these processes can
run. Only the deliveries are shared, through the consumer group ``submitters`` of
``{ns}:reports:outbox``: each report goes to one copy. The polling and the pushed updates are
not divided: every copy polls and drains the pushed updates, so the same change may be seen
by several, and the residents' markers (and the stored state, which never goes backwards)
keep each change told once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import logs, profile, settings
from bot.channels.stream import consumer_name
from bot.channels.supervisor import supervised
from bot.errors import ConfigError, CouncilError
from bot.redis_conn import connect_async
from bot.reports.backoffice import Open311BackOffice, back_office_for
from bot.reports.cases import ReportCases
from bot.reports.notify import ResidentNotifier, Wording
from bot.reports.outbox import ReportWorker
from bot.reports.store import ReportStore
from bot.reports.updates import PushedUpdates, ReportUpdates, UpdatePoller

if TYPE_CHECKING:
    from bot.testing.open311 import StandInThread

_log = logging.getLogger("bot.reports")


class _QuietServer(uvicorn.Server):
    """Uvicorn without its own signal handling (this process stops on its own signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.reports", description=__doc__)
    parser.add_argument("--port", type=int, default=8312, help="loopback port of /health")
    parser.add_argument(
        "--stand-in",
        action="store_true",
        help="serve the local Open311 stand-in at the profile's loopback endpoint (demo)",
    )
    return parser.parse_args(argv)


def _stand_in(endpoint: str) -> StandInThread | None:
    from bot.testing.open311 import Open311StandIn, StandInThread  # the demo's only

    parts = urlsplit(endpoint)
    if parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        _log.warning("--stand-in: %s is not a loopback address; not serving one", endpoint)
        return None
    thread = StandInThread(Open311StandIn(), port=parts.port)
    _log.info("Open311 stand-in serving %s", thread.start())
    return thread


async def serve(args: argparse.Namespace) -> None:
    """Run the workers until SIGINT/SIGTERM."""
    shared = settings.current()
    council = profile.current()
    config = council.reports
    if config is None:
        raise ConfigError(council.path, "reports", "is missing: there is nothing to deliver")
    stand_in = _stand_in(config.open311.endpoint) if args.stand_in and config.open311 else None
    client = await connect_async(shared.redis_url)
    namespace = shared.namespace
    keep_days = council.retention_in_force(shared).problem_report_days
    environ = dict(shared.environ)
    if stand_in is not None and config.open311 and config.open311.api_key_variable:
        # DEVELOPMENT ONLY: the stand-in takes any key; a real server's comes from the variable
        environ.setdefault(config.open311.api_key_variable, "stand-in")
    back_office = back_office_for(config, environ, client, namespace)
    notifier = ResidentNotifier(client, namespace, Wording(council), told_days=keep_days)
    worker = ReportWorker(
        client, back_office, notifier, ReportCases(client, namespace, council), namespace,
        consumer=consumer_name(),
    )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # held messages (closed windows) are released beside the channels' outbox worker
    # (bot.channels.rasa), which sends them: a council without reports needs it too
    tasks = [supervised("reports worker", lambda: worker.run(stop), stop)]
    if isinstance(back_office, Open311BackOffice) and config.open311 is not None:
        updates = ReportUpdates(client, namespace, notifier)
        poller = UpdatePoller(
            client,
            namespace,
            back_office.client,
            updates,
            every_seconds=config.open311.poll_minutes * 60,
        )
        pushed = PushedUpdates(client, namespace, updates)
        tasks.append(supervised("report update poller", lambda: poller.run(stop), stop))
        tasks.append(supervised("pushed report updates", lambda: pushed.run(stop), stop))

    store = ReportStore(client, namespace)

    async def health(request: Request) -> Response:
        # counts only: no resident data
        return JSONResponse(
            {
                "ok": True,
                "back_office": back_office.target,
                "queued": await client.xlen(worker.stream),
                "retrying": await client.zcard(worker.retries.due_key),
                "failed": await client.xlen(store.key("failed")),
                "followed": await client.zcard(store.key("followed")),
            }
        )

    app = Starlette(routes=[Route("/health", health)])
    server = _QuietServer(
        uvicorn.Config(
            app, host="127.0.0.1", port=args.port, log_level="warning", ws="none", http="h11"
        )
    )
    http = asyncio.create_task(server.serve())
    _log.info("reports: delivering to %s, namespace %s", back_office.target, namespace)
    await stop.wait()
    server.should_exit = True
    await asyncio.gather(http, *tasks, return_exceptions=True)
    await back_office.aclose()
    await client.close()
    if stand_in is not None:
        stand_in.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logs.install()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    try:
        asyncio.run(serve(_parse_args(argv)))
    except CouncilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
