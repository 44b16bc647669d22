"""Web chat benchmark (``make bench-webchat``): thousands of open widgets on one edge.

Processes: the public edge exactly as ``make run`` starts it (``python -m bot.edge``, the
council profile's ``webchat`` section, ``COUNCIL_WEBCHAT_SECRET``), a worker process running
the channel runtime of the Rasa server (:data:`bot.channels.rasa.runtime`: the inbox worker
feeding the agent, the outbox worker sending through the web chat adapter) with the channels
benchmark's echo agent (``bench/channels.py``'s :class:`EchoAgent`: one immediate reply
``ack:<id>``, no NLU, so the figures measure the channel path), and this load generator.

Phases:

* connect: ``--sessions`` widgets start a conversation (``POST /webchat/sessions``) and open
  their event stream (``GET /webchat/events``), ``--connect-concurrency`` at a time;
  ``connect_p99_ms`` is from the session request to the stream's first event.
* idle: the edge's resident memory with every stream open and idle, minus before any was
  opened, per session (``idle_kb_per_session``; target <= 50).
* load: ``--rate`` messages a second, open-loop, each from a random open widget, for
  ``--seconds``; e2e is from the POST leaving to the echo's reply arriving on that widget's
  stream (target p99 <= 300 ms); ``lost`` are messages never answered within ``--drain``
  seconds, ``duplicates`` replies beyond one per message.

``widget_kb_compressed`` is the widget's script and stylesheet gzip-compressed
(:func:`bot.webchat.assets.widget_size_gzip`); ``axe_violations`` is filled by ``--axe`` (runs
the widget's browser tests, which assert 0 violations in every state: 0 when they pass,
null when they fail or are missing), else null; ``--axe-only`` records just that in the
existing results. The real assistant is not run here (``agent`` says so). Prints this run beside the
previous one in ``bench/results/webchat.json`` (the baseline, kept in the file under
``baseline``) and the targets, then writes it.
Needs REDIS_URL or TEST_REDIS_URL; not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import uvloop
import yaml
from channels import (
    ACK,
    EchoAgent,
    _cpu_seconds,
    _end,
    _free_port,
    _pct,
    _spawn_edge,
    _wait_up,
)

from bot.webchat.assets import widget_size_gzip

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "webchat.json"
ORIGIN = "https://www.ashvale.gov.uk"
TARGETS = {
    "e2e_p99_ms": "<= 300",
    "lost": "0",
    "duplicates": "0",
    "idle_kb_per_session": "<= 50",
    "widget_kb_compressed": "< 30",
    "axe_violations": "0",
}
KEYS = (
    "sessions",
    "msgs_per_s",
    "messages",
    "connect_p50_ms",
    "connect_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "lost",
    "duplicates",
    "idle_kb_per_session",
    "edge_rss_mb",
    "idle_edge_cpu_percent",
    "edge_cpu_ms_per_msg",
    "worker_cpu_ms_per_msg",
    "widget_kb_compressed",
    "axe_violations",
    "client_lag_p99_ms",
)


# --- the worker process: the Rasa server's channel runtime with the echo agent ---------------


def work() -> None:
    """Run the inbox and outbox workers as the Rasa server does, until terminated."""
    from bot.channels.rasa import runtime
    from bot.webchat.adapter import WebChatAdapter

    async def main() -> None:
        runtime.register(WebChatAdapter(), EchoAgent().handle_message)
        await runtime.start()
        await asyncio.Event().wait()

    uvloop.run(main())


# --- the load generator ---------------------------------------------------------------------


class Widget:
    """One resident's open widget: its token and what its event stream brought."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.token = ""
        self.replies: dict[str, list[float]] = {}
        self.outstanding = ""  # the message sent and not answered yet (one at a time)
        self.said: list[str] = []  # what the bot said on this widget, for lost examples
        self.connected = asyncio.Event()

    async def open(self, http: aiohttp.ClientSession, base: str, timings: list[float]) -> None:
        begun = time.perf_counter()
        async with http.post(f"{base}/webchat/sessions", json={"council": "ashvale"}) as answer:
            answer.raise_for_status()
            self.token = (await answer.json())["token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        async with http.get(f"{base}/webchat/events", headers=headers) as stream:
            stream.raise_for_status()
            kind = ""
            async for raw in stream.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind:
                    if not self.connected.is_set():
                        timings.append((time.perf_counter() - begun) * 1000)
                        self.connected.set()
                    if kind == "message":
                        self._message(json.loads(line[5:]))
                    kind = ""

    def _message(self, data: dict[str, Any]) -> None:
        """A message on the stream: the echo's reply names its message; the assistant's
        first message after a send answers it (its later ones in the turn are not counted)."""
        if data["from"] != "bot":
            return
        self.said.append(data.get("text", ""))
        found = ACK.search(data.get("text", ""))
        answered = found.group(1) if found else self.outstanding
        if answered:
            self.replies.setdefault(answered, []).append(time.perf_counter())
        if answered == self.outstanding:
            self.outstanding = ""


QUESTIONS = (
    "When is my bin day?",
    "How do I pay my council tax?",
    "I want to report a pothole",
    "What are the opening hours of the recycling centre?",
    "How do I apply for a parking permit?",
)
"""What residents ask the real assistant (``--assistant``)."""


async def _send(
    http: aiohttp.ClientSession, base: str, widget: Widget, message_id: str, text: str = ""
) -> tuple[float, int]:
    """POST a message as the widget does: a connection that fails is tried again with the
    same ``client_id`` (a pooled connection the server has just closed), so it counts once."""
    sent = time.perf_counter()
    widget.outstanding = message_id
    body = {"client_id": str(uuid.uuid4()), "text": text or f"bench {message_id}"}
    headers = {"Authorization": f"Bearer {widget.token}"}
    for attempt in range(3):
        try:
            async with http.post(f"{base}/webchat/messages", json=body, headers=headers) as answer:
                await answer.read()
                return sent, answer.status
        except aiohttp.ClientError:
            if attempt == 2:
                return sent, 0
    return sent, 0


def _bench_profile(folder: Path) -> Path:
    """The demo profile with limits that let one address open every session."""
    data = yaml.safe_load((ROOT / "council.yml").read_text(encoding="utf-8"))
    data["closed_days"]["bank_holidays"] = str(ROOT / data["closed_days"]["bank_holidays"])
    data["reports"]["gazetteer"] = str(ROOT / data["reports"]["gazetteer"])
    data["webchat"]["limits"].update(
        sessions_per_hour=1_000_000, address_requests_per_minute=1_000_000
    )
    path = folder / "council.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _axe() -> int | None:
    tests = ROOT / "tests" / "webchat" / "test_widget_browser.py"
    if not tests.exists():
        return None
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(tests), "-q", "-x", "-m", "browser and not e2e"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return 0 if run.returncode == 0 else None


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL", "")
    if not redis_url:
        raise SystemExit("set REDIS_URL or TEST_REDIS_URL")
    namespace = f"benchwc{secrets.token_hex(4)}"
    folder = Path(tempfile.mkdtemp(prefix="bench-webchat-"))
    credentials = folder / "credentials.yml"
    credentials.write_text("bot.webchat.rasa.WebChatInput:\n", encoding="utf-8")
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "COUNCIL_NAMESPACE": namespace,
        "COUNCIL_PROFILE": str(_bench_profile(folder)),
        "COUNCIL_WEBCHAT_SECRET": secrets.token_urlsafe(32),
    }
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    if args.assistant:
        from bot.testing.assistant import running_assistant

        overrides = {k: env[k] for k in ("COUNCIL_PROFILE", "COUNCIL_WEBCHAT_SECRET")}
        # it seeds the knowledge base with asyncio.run: not from this running loop
        assistant = await asyncio.to_thread(
            stack.enter_context,
            running_assistant(redis_url, namespace, folder, credentials=credentials, env=overrides),
        )
        worker_pid = assistant.services["rasa"].process.pid
    else:
        worker = subprocess.Popen(
            [sys.executable, __file__, "work"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        stack.callback(_end, worker)
        worker_pid = worker.pid
    edge = _spawn_edge(port, credentials, env)
    results: dict[str, Any] = {
        "agent": "the real assistant (Rasa server, action server, trained model)"
        if args.assistant
        else "echo stand-in for Rasa's agent (no NLU): measures the channel path only",
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.shared:
        results["machine_note"] = (
            "shared machine: other engineers' tests and builds ran on the same 2 cores during "
            "this run, so latencies are noisy and pessimistic"
        )
    tasks: list[asyncio.Task[None]] = []
    try:
        await _wait_up(f"{base}/health")
        edge_process = psutil.Process(edge.pid)
        worker_process = psutil.Process(worker_pid)
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"Origin": ORIGIN}
        ) as http:
            # warm: one conversation answered end to end before anything is measured
            warm = Widget(-1)
            tasks.append(asyncio.create_task(warm.open(http, base, [])))
            await asyncio.wait_for(warm.connected.wait(), 60)
            await _send(http, base, warm, "warm", QUESTIONS[0] if args.assistant else "")
            deadline = time.monotonic() + 300
            while "warm" not in warm.replies and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            rss_before = edge_process.memory_info().rss
            widgets = [Widget(n) for n in range(args.sessions)]
            connect_ms: list[float] = []
            gate = asyncio.Semaphore(args.connect_concurrency)

            async def connect(widget: Widget) -> None:
                async with gate:
                    tasks.append(asyncio.create_task(widget.open(http, base, connect_ms)))
                    await asyncio.wait_for(widget.connected.wait(), 120)

            await asyncio.gather(*(connect(w) for w in widgets))
            idle_cpu = _cpu_seconds(edge_process)
            await asyncio.sleep(args.settle)  # idle: let allocations settle
            rss_idle = edge_process.memory_info().rss
            results["idle_edge_cpu_percent"] = round(
                (_cpu_seconds(edge_process) - idle_cpu) / args.settle * 100, 1
            )
            results["sessions"] = args.sessions
            results["connect_p50_ms"] = _pct(connect_ms, 0.5)
            results["connect_p99_ms"] = _pct(connect_ms, 0.99)
            results["idle_kb_per_session"] = round(
                (rss_idle - rss_before) / 1024 / args.sessions, 1
            )
            results["edge_rss_mb"] = round(rss_idle / 2**20, 1)
            print(
                f"connected {args.sessions} widgets; edge RSS {rss_before / 2**20:.0f} -> "
                f"{rss_idle / 2**20:.0f} MB",
                flush=True,
            )

            # open-loop load: message n leaves at n / rate seconds
            count = int(args.rate * args.seconds)
            chosen: dict[str, Widget] = {}
            sent_at: dict[str, float] = {}
            lags: list[float] = []
            statuses: list[int] = []
            started = time.perf_counter()
            busy_cpu = _cpu_seconds(edge_process), _cpu_seconds(worker_process)
            sends = []
            texts: dict[str, str] = {}
            unused = random.sample(widgets, len(widgets))
            for n in range(count):
                due = started + n / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lags.append(max(0.0, time.perf_counter() - due) * 1000)
                message_id = f"m{n}"
                if args.assistant and unused:
                    # a new conversation each: a turn's later messages, or a conversation
                    # handed to a person (the bot then stays silent), never answer another
                    widget = unused.pop()
                else:
                    idle = [
                        w
                        for w in random.sample(widgets, min(len(widgets), 50))
                        if not w.outstanding
                    ]
                    widget = idle[0] if idle else random.choice(widgets)  # one at a time, mostly
                chosen[message_id] = widget
                text = random.choice(QUESTIONS) if args.assistant else ""
                texts[message_id] = text
                sends.append(asyncio.create_task(_send(http, base, widget, message_id, text)))
            for message_id, outcome in zip(chosen, await asyncio.gather(*sends), strict=True):
                sent_at[message_id], status = outcome
                statuses.append(status)
            drain_until = time.monotonic() + args.drain
            while time.monotonic() < drain_until and any(
                message_id not in widget.replies for message_id, widget in chosen.items()
            ):
                await asyncio.sleep(0.2)
            e2e = [
                (widget.replies[m][0] - sent_at[m]) * 1000
                for m, widget in chosen.items()
                if m in widget.replies
            ]
            last = max((w.replies[m][0] for m, w in chosen.items() if m in w.replies), default=0)
            results["messages"] = count
            edge_cpu = _cpu_seconds(edge_process) - busy_cpu[0]
            results["edge_cpu_ms_per_msg"] = round(edge_cpu * 1000 / max(count, 1), 2)
            worker_cpu = _cpu_seconds(worker_process) - busy_cpu[1]
            results["worker_cpu_ms_per_msg"] = round(worker_cpu * 1000 / max(count, 1), 2)
            results["msgs_per_s"] = round(len(e2e) / max(last - started, 1e-9), 1)
            results["e2e_p50_ms"] = _pct(e2e, 0.5)
            results["e2e_p99_ms"] = _pct(e2e, 0.99)
            results["e2e_p90_ms"] = _pct(e2e, 0.9)
            results["e2e_max_ms"] = round(max(e2e, default=0.0), 1)
            # when the slow ones were sent (seconds into the load): spread out or in bursts
            slow = sorted(
                round(sent_at[m] - started, 1)
                for m, w in chosen.items()
                if m in w.replies and (w.replies[m][0] - sent_at[m]) * 1000 > 300
            )
            results["over_300ms"] = len(slow)
            results["over_300ms_last_sent_at_s"] = slow[-1] if slow else None
            steady = [
                (w.replies[m][0] - sent_at[m]) * 1000
                for m, w in chosen.items()
                if m in w.replies and sent_at[m] - started >= 10
            ]
            results["e2e_p99_after_10s_ms"] = _pct(steady, 0.99)
            results["lost"] = sum(1 for m, w in chosen.items() if m not in w.replies)
            results["lost_examples"] = [
                {"sent": texts[m], "bot_said_on_widget": w.said}
                for m, w in chosen.items()
                if m not in w.replies
            ][:5]
            # the echo names its message, so a second reply is a duplicate; the assistant's
            # turns have several messages, so duplicates cannot be told apart there
            results["duplicates"] = (
                None
                if args.assistant
                else sum(len(w.replies[m]) - 1 for m, w in chosen.items() if m in w.replies)
            )
            results["not_accepted"] = sum(1 for status in statuses if status != 202)
            results["client_lag_p99_ms"] = _pct(lags, 0.99)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _end(edge)
        stack.close()
        await _forget(redis_url, namespace)
    results["widget_kb_compressed"] = round(widget_size_gzip() / 1024, 1)
    results["axe_violations"] = _axe() if args.axe else None
    results["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return results


async def _forget(redis_url: str, namespace: str) -> None:
    from bot.keys import prefix
    from bot.redis_conn import connect_async
    from bot.testing.cleanup import delete_keys_async

    client = await connect_async(redis_url)
    try:
        await delete_keys_async(client, prefix(namespace))
    finally:
        await client.close()


def _table(results: dict[str, Any], baseline: dict[str, Any]) -> str:
    lines = [f"{'':<24}{'this run':>14}{'baseline':>14}   target"]
    for row in KEYS:
        cells = [str(side.get(row, "-")) for side in (results, baseline)]
        lines.append(f"{row:<24}{cells[0]:>14}{cells[1]:>14}   {TARGETS.get(row, '')}")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["work"]:
        work()
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0, help="messages a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for replies")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--settle", type=float, default=20.0, help="idle seconds before the load")
    parser.add_argument(
        "--assistant",
        action="store_true",
        help="the real assistant instead of the echo agent (trains the model if needed); "
        "its figures go under 'assistant' in the results",
    )
    parser.add_argument("--axe", action="store_true", help="run the widget's browser tests")
    parser.add_argument(
        "--axe-only",
        action="store_true",
        help="only run the widget's browser tests and record axe_violations in the results",
    )
    parser.add_argument(
        "--quiet-machine",
        dest="shared",
        action="store_false",
        help="the machine had no other work (default: shared, noted in the results)",
    )
    args = parser.parse_args()
    if args.axe_only:
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
        saved["axe_violations"] = _axe()
        saved["axe_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        print(f"axe_violations: {saved['axe_violations']}")
        return
    baseline: dict[str, Any] = {}
    if RESULTS.exists():  # the previous run is the baseline this one is compared with
        previous = json.loads(RESULTS.read_text(encoding="utf-8"))
        baseline = {k: previous[k] for k in (*KEYS, "measured_at", "machine") if k in previous}
    results = uvloop.run(bench(args))
    if args.assistant:  # beside the echo run's figures, not instead of them
        saved = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
        print(_table(results, saved.get("assistant") or {}))
        saved["assistant"] = results
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        return
    print(_table(results, baseline))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    saved = {**results, "targets": TARGETS, "baseline": baseline or None}
    if RESULTS.exists() and "assistant" in json.loads(RESULTS.read_text(encoding="utf-8")):
        saved["assistant"] = json.loads(RESULTS.read_text(encoding="utf-8"))["assistant"]
    RESULTS.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
