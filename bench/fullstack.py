"""Whole-assistant benchmark (``make bench-fullstack``): the real model, actions and Redis.

What runs: our own embedded Redis (Valkey, so its CPU is ours alone), the real action server
and the real Rasa server with the trained model (``models/council.tar.gz``, copied aside so a
retrain meanwhile changes nothing), the public edge (``python -m bot.edge``), and a fake
provider API (:class:`bot.testing.providers.ProviderThread`, stamping each reply's arrival)
in this process. The Rasa server opens Rasa's REST channel next to our WhatsApp and Telegram
workers, so both sides run against the same servers and the same model:

* ``ours``: signed WhatsApp (Twilio) and Telegram webhooks posted to the edge, queued in the
  Redis inbox, handled by the inbox worker inside the Rasa server, replies sent by the outbox
  worker to the fake provider. ack = the webhook's answer, e2e = webhook posted to the reply's
  arrival at the provider.
* ``rasa_rest``: the same messages posted to Rasa's REST channel; its replies come in the
  HTTP answer (ack = e2e).

The load is the realistic mix of conversations (each a new resident): 60% a knowledge-base
question (the demo council's example questions, varied; not the problem-report topics, whose
questions start a report form), 20% a two-turn bin-day conversation (asks, then gives a
postcode, or asks for a postcode and picks a numbered address; the second turn is sent once
the first turn's replies have been quiet for 1 s), 10% asking for a person, 10% out of scope.
Before the load each of these conversations is sent once through REST and kept only if the
model answers it as meant (its entry, a person, the bin days): ``mix_check`` lists what was
dropped and why. Open loop: conversations start on a fixed schedule whatever the answers, at
stepped message rates (``--rates``), each step ``--step-seconds`` long, then up to
``--drain-seconds`` for the replies (counted from the step's end or from the last message
sent, whichever is later). A webhook answered 5xx is posted again as providers do (same
message id, for up to a minute). A side whose step ends far behind (e2e p99 over
``--stop-after-ms``) skips its higher rates. Per step: ack and e2e p50/p99, lost (no reply by
the end of the drain), duplicates (the same reply text twice to one message), a few examples
of each, backlog growth (ours: inbox stream length per second of the step; REST: requests in
flight), CPU ms per message of each process (``/proc/<pid>/stat`` before and after the step),
the load average.

``turns``: one conversation of ``--turns`` knowledge-base questions, one at a time, on each
side; per-message CPU of the Rasa server + action server + Redis (their threads' nanoseconds
from ``/proc/<pid>/task/*/schedstat``: a message costs a few clock ticks) and latency, turns
2-6 vs the last five (turn 1 also starts the session, a cost of its own: ``first_turn``).
Turns 2-6 are a second conversation's, alternating with the long one's last five, so both
are measured under the same load of the machine.
``turn50_over_turn1`` is the ratio of those CPU costs.

``first_message_ms``: the first message after the servers said they were ready (warm-up).

``--workers N`` (default 2, one per core) starts N Rasa workers (one Rasa server process
each) sharing the inbox's consumer group; the REST side spreads its conversations over their
REST channels. ``--pin`` runs each worker on a core of its own (``taskset -c``: worker i on
core i modulo the cores); the other processes are not pinned. ``cpu_ms_per_msg.rasa`` is the
workers' sum. Before the steps each worker answers one question through its REST channel.

Parts, all run by default (``--only PART``, repeatable, runs some and saves them into the
results already in ``--out``):

* ``sides``: the steps, turns and first message of ``ours`` and ``rasa_rest``.
* ``faults``: on the same servers afterwards, ours at ``--fault-rate`` while the action
  server (14 s), a Rasa worker (restarted at once) and Redis (5 s) are killed (SIGKILL) one
  at a time: lost, duplicates, restart and recovery seconds, dead letters.
* ``scale``: ours at the same rates with one Rasa worker, then with two, each pinned to a core
  (each its own servers and Redis, no long conversation): ``one_worker_rate`` and
  ``two_worker_rate`` (each the highest rate with e2e p99 <= 1 s and nothing lost) and their
  ratio, and each one's capacity (messages answered within a step per second of it, at the
  highest step: what the workers keep up with once saturated, less sensitive to the rates).

``--short`` runs a development version (two rates, short steps, 20 turns). Results go to
``bench/results/fullstack.json``: ``{"ours": {...}, "rasa_rest": {...}, "faults": {...},
"scale": {...}}``; ``--as-before`` stores the run under ``"before"`` instead (kept by later
runs).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import random
import secrets
import shutil
import tempfile
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot.demo import seed
from bot.keys import key
from bot.knowledge.content import CONTENT_DIR, load_entries
from bot.redis_conn import EmbeddedRedis, connect, start_embedded
from bot.services import (
    Service,
    action_server_argv,
    base_env,
    edge_argv,
    free_port,
    rasa_server_argv,
    start_service,
)
from bot.testing.channels import ChannelAccounts
from bot.testing.providers import FakeProvider, ProviderThread

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results" / "fullstack.json"
MODEL = ROOT / "models" / "council.tar.gz"
ACCOUNTS = ChannelAccounts()  # the council's WhatsApp number and Telegram bot, fresh secrets
RATES = (5.0, 10.0, 20.0, 35.0, 50.0, 70.0)
READING_SECONDS = 1.0  # quiet after a turn's last reply before a bin conversation's second turn
REDELIVERY_SECONDS = 60.0  # how long a refused webhook is posted again, as providers do
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHOWN = ("messages", "ack_p99_ms", "e2e_p50_ms", "e2e_p99_ms", "lost", "duplicates")

HANDOFF = (
    "let me talk to a person",
    "I want to speak to a human",
    "can I talk to someone real please",
    "put me through to an agent",
    "I need a real person",
    "can someone call me back about my account",
    "I'd like to speak to a member of staff",
    "get me a real person please",
    "is there a human I can chat to",
    "I'd rather talk to an actual person",
)
OUT_OF_SCOPE = (
    "what's the weather like tomorrow",
    "will it rain this weekend",
    "who won the football last night",
    "tell me a joke",
    "recipe for spaghetti bolognese",
    "how do I make pancakes",
    "can you recommend a good restaurant",
    "what's on at the cinema tonight",
    "book me a taxi",
    "what's the capital of France",
)
BIN_ASK = (
    "when is my bin day?",
    "when is my bin day",
    "bin day please",
    "which day are my bins collected?",
    "when do you collect my bins",
)
BIN_AT = (
    "when do the bins go out at {postcode}",
    "bin day for {postcode} please",
    "what day is bin collection at {postcode}?",
)
SINGLE_ADDRESS_POSTCODE = "AV5 1QA"  # the demo's one postcode with a single address
ADDRESSES = (("AV1 2BX", 4),)  # demo postcodes listing their addresses by number, and how many
PREFIXES = ("", "", "hi, ", "hello ", "please ", "quick question: ")
SUFFIXES = ("", "", " thanks", " please", "?", " cheers")


def _pct(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[max(int(share * len(ordered)) - 1, 0)], 1) if ordered else None


def _cpu_ms(pid: int) -> float:
    """User + system CPU of a process so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS


def _thread_cpu_ms(pid: int) -> float:
    """CPU time so far of a process's running threads, to the nanosecond (``schedstat``).

    ``/proc/<pid>/stat`` counts 10 ms clock ticks, too coarse for one message (~40 ms); a
    thread that ended meanwhile is not counted here.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended
    return total / 1e6


# --- the load -------------------------------------------------------------------------------


@dataclass
class Message:
    """One message of a conversation and what became of it."""

    text: str
    sent_at: float = 0.0
    ack_ms: float | None = None
    status: int = 0
    refusals: int = 0  # webhook posts answered 5xx or not at all, then posted again
    replies: list[tuple[float, str]] = field(default_factory=list)

    def e2e_ms(self) -> float | None:
        return (self.replies[0][0] - self.sent_at) * 1000 if self.replies else None

    def duplicates(self) -> int:
        texts = [text for _, text in self.replies]
        return len(texts) - len(set(texts))


@dataclass
class Conversation:
    """A resident's conversation: its kind, its channel, its messages in order."""

    kind: str
    channel: str  # whatsapp | telegram (ours) or rest
    resident: str  # phone number, Telegram chat id or REST sender
    messages: list[Message]
    turn: int = 0  # the message replies are attributed to
    replied: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Script:
    """A conversation of the mix and what the assistant must do with it.

    ``expect``: a knowledge-base entry's id (that entry answers), ``handoff`` (a person gets
    the conversation) or ``bin_day`` (the collection days are told at the last turn).
    """

    kind: str
    texts: tuple[str, ...]
    expect: str


def _vary(rng: random.Random, text: str) -> str:
    text = text.rstrip("?") if rng.random() < 0.5 else text
    if rng.random() < 0.3:
        text = text.lower()
    return f"{rng.choice(PREFIXES)}{text}{rng.choice(SUFFIXES)}".strip()


def scripts() -> list[Script]:
    """Every conversation the mix draws from (before :func:`_check_mix` keeps those that work).

    Knowledge-base questions are the demo content's example questions; entries of the
    problem-report topics are left out (those questions start a report form, issue 15). Each
    one-message conversation comes as written and once varied (a greeting, "thanks", case,
    punctuation: :func:`_vary`, the same every run), so every text the mix sends is checked.
    """
    rng = random.Random(3)
    one: list[tuple[str, str, str]] = [
        ("knowledge", question, entry.id)
        for entry in load_entries(CONTENT_DIR)
        if not entry.topic.startswith("report_")
        for question in entry.questions
    ]
    one += [("handoff", text, "handoff") for text in HANDOFF]
    one += [("out_of_scope", text, "handoff") for text in OUT_OF_SCOPE]
    found = [
        Script(kind, (variant,), expect)
        for kind, text, expect in one
        for variant in dict.fromkeys((text, _vary(rng, text)))
    ]
    found += [Script("bins", (ask, SINGLE_ADDRESS_POSTCODE), "bin_day") for ask in BIN_ASK]
    found += [
        Script("bins", (at.format(postcode=postcode), str(number)), "bin_day")
        for at in BIN_AT
        for postcode, count in ADDRESSES
        for number in range(1, count + 1)
    ]
    return found


class Mix:
    """Draws the conversations of the realistic mix (60/20/10/10) from checked scripts."""

    SHARES = (("knowledge", 0.6), ("bins", 0.2), ("handoff", 0.1), ("out_of_scope", 0.1))

    def __init__(self, seed_value: int, kept: list[Script]) -> None:
        self.rng = random.Random(seed_value)
        self.by_kind = {kind: [s for s in kept if s.kind == kind] for kind, _ in self.SHARES}
        missing = [kind for kind, found in self.by_kind.items() if not found]
        if missing:
            raise SystemExit(f"the model answers no conversation of the mix's kinds {missing}")

    def texts(self) -> tuple[str, list[str]]:
        roll, total = self.rng.random(), 0.0
        kind = self.SHARES[-1][0]
        for name, share in self.SHARES:
            total += share
            if roll < total:
                kind = name
                break
        return kind, list(self.rng.choice(self.by_kind[kind]).texts)


class StampingProvider(FakeProvider):
    """The fake provider, telling the load generator when and to whom each reply arrived."""

    def __init__(self, on_reply: Callable[[str, str, float], None]) -> None:
        super().__init__()
        self.on_reply = on_reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.read()  # aiohttp keeps it: the fake reads it again
        if request.path.endswith("/Messages.json"):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            self.on_reply(
                form.get("To", "").removeprefix("whatsapp:"), form.get("Body", ""), arrived
            )
        elif request.path.endswith("/sendMessage"):
            data = (
                json.loads(body)
                if body.startswith(b"{")
                else dict(urllib.parse.parse_qsl(body.decode()))
            )
            self.on_reply(str(data.get("chat_id")), str(data.get("text", "")), arrived)
        answer = await super()._handle(request)
        self.requests.clear()  # nothing reads them here: keep memory flat
        return answer


_RESIDENTS = itertools.count(1)
"""Numbers residents for the whole run: a resident of an earlier load (one handed to a
person, whose conversation is paused) must never come back as a new one."""


class Load:
    """Sends conversations to one side and collects what came back."""

    def __init__(
        self, side: str, edge: str, rasa: list[str], provider: ProviderThread | None
    ) -> None:
        self.side = side
        self.edge = edge
        self.rasa = rasa
        self.by_resident: dict[str, Conversation] = {}
        self.session: aiohttp.ClientSession | None = None
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.provider = provider

    async def __aenter__(self) -> Load:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        assert self.session is not None
        await self.session.close()

    def on_reply(self, resident: str, text: str, arrived: float) -> None:
        """Called on this loop for each reply at the provider."""
        conversation = self.by_resident.get(resident)
        if conversation is None:
            return
        conversation.messages[conversation.turn].replies.append((arrived, text))
        conversation.replied.set()

    def new(self, kind: str, texts: list[str]) -> Conversation:
        count = next(_RESIDENTS)
        n = (count + 1_000_000 * (os.getpid() % 90)) % 10**8
        if self.side == "rest":
            channel, resident = "rest", f"bench-rest-{uuid.uuid4().hex[:12]}"
        elif count % 2:
            channel, resident = "whatsapp", f"+4477{n:08d}"
        else:
            channel, resident = "telegram", str(800_000_000 + n)
        conversation = Conversation(kind, channel, resident, [Message(t) for t in texts])
        self.by_resident[resident] = conversation
        return conversation

    def _request(self, conversation: Conversation, text: str) -> tuple[str, bytes, dict[str, str]]:
        if conversation.channel == "rest":
            body = json.dumps({"sender": conversation.resident, "message": text}).encode()
            server = self.rasa[zlib.crc32(conversation.resident.encode()) % len(self.rasa)]
            return f"{server}/webhooks/rest/webhook", body, {"Content-Type": "application/json"}
        if conversation.channel == "whatsapp":
            url = f"{self.edge}/webhooks/whatsapp/webhook"
            form = ACCOUNTS.whatsapp_form(
                conversation.resident, "whatsapp_text.txt", ProfileName="Bench Resident", Body=text
            )
            headers = ACCOUNTS.twilio_headers(url, form)
            return url, urllib.parse.urlencode(form).encode(), headers
        chat = int(conversation.resident)
        update = {
            "update_id": secrets.randbelow(2**31),
            "message": {
                "message_id": secrets.randbelow(2**31),
                "from": {"id": chat, "is_bot": False, "first_name": "Bench"},
                "chat": {"id": chat, "type": "private", "first_name": "Bench"},
                "date": int(time.time()),
                "text": text,
            },
        }
        return (
            f"{self.edge}/webhooks/telegram/webhook",
            json.dumps(update).encode(),
            ACCOUNTS.telegram_headers(),
        )

    async def send(self, conversation: Conversation, turn: int) -> None:
        """Send one message and record its acknowledgement (and, for REST, its replies).

        A webhook answered 5xx or not at all is posted again, the same request (the same
        message id), backing off from 1 s to 8 s for up to :data:`REDELIVERY_SECONDS`, as
        Telegram and Twilio's fallback do; ``refusals`` counts those answers.
        """
        assert self.session is not None
        message = conversation.messages[turn]
        conversation.turn = turn
        conversation.replied.clear()
        url, body, headers = self._request(conversation, message.text)
        message.sent_at = time.perf_counter()
        give_up = message.sent_at + (REDELIVERY_SECONDS if conversation.channel != "rest" else 0)
        delay = 1.0
        self.in_flight += 1
        try:
            while True:
                try:
                    async with self.session.post(url, data=body, headers=headers) as answer:
                        text = await answer.text()
                        message.status = answer.status
                except aiohttp.ClientError:
                    message.status = -1
                if message.status < 500 and message.status != -1:
                    break
                message.refusals += 1
                if time.perf_counter() + delay > give_up:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        finally:
            self.in_flight -= 1
            message.ack_ms = (time.perf_counter() - message.sent_at) * 1000
        if conversation.channel == "rest" and message.status == 200:
            done = time.perf_counter()
            for reply in json.loads(text):
                if reply.get("text"):
                    message.replies.append((done, reply["text"]))
            if message.replies:
                conversation.replied.set()

    async def read(self, conversation: Conversation, until: float) -> bool:
        """Wait for the current turn's replies: the first one, then a quiet READING_SECONDS.

        A resident reads a turn's answer (one message or several) before replying; waiting for
        the quiet after the last reply, not only the first, also keeps a turn's late second
        reply from being counted against the next turn. False: no reply by ``until``.
        """
        try:
            await asyncio.wait_for(
                conversation.replied.wait(), max(until - time.perf_counter(), 0.01)
            )
        except TimeoutError:
            return False
        while True:
            conversation.replied.clear()
            try:
                await asyncio.wait_for(conversation.replied.wait(), READING_SECONDS)
            except TimeoutError:
                return True

    async def converse(self, conversation: Conversation, last_turn_by: float) -> None:
        """Send the conversation's turns; a later turn once the previous one's replies are read."""
        await self.send(conversation, 0)
        for turn in range(1, len(conversation.messages)):
            if not await self.read(conversation, last_turn_by):
                return  # never sent: not counted
            if time.perf_counter() > last_turn_by:
                return
            await self.send(conversation, turn)

    def start(self, conversation: Conversation, last_turn_by: float) -> None:
        task = asyncio.create_task(self.converse(conversation, last_turn_by))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


# --- the servers ------------------------------------------------------------------------------


class Stack:
    """Redis, action server, Rasa server and edge, in a folder of their own."""

    def __init__(
        self, folder: Path, model: Path, provider_url: str, workers: int = 1, pin: bool = False
    ) -> None:
        self.folder = folder
        self.workers = workers
        self.pinned = pin
        self.namespace = f"benchfs{uuid.uuid4().hex[:8]}"
        self.redis: EmbeddedRedis = start_embedded(folder / "redis", free_port())
        shutil.copy(model, folder / "model.tar.gz")
        endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
        (folder / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
        credentials = ACCOUNTS.write(folder / "credentials.yml", provider_url, rest=True)
        seed(self.redis.url, self.namespace)
        actions_port, edge_port = free_port(), free_port()
        rasa_ports = [free_port() for _ in range(workers)]
        token = secrets.token_urlsafe(16)
        self.token = token  # Rasa's HTTP API (the trackers the mix check reads)
        env = base_env(
            REDIS_URL=self.redis.url,
            COUNCIL_NAMESPACE=self.namespace,
            ACTION_SERVER_URL=f"http://127.0.0.1:{actions_port}/webhook",
            RASA_URL=f"http://127.0.0.1:{rasa_ports[0]}",
            RASA_AUTH_TOKEN=token,
            COUNCIL_TODAY="2026-11-23",
            **ACCOUNTS.env(),
        )
        self.launchers: dict[str, Callable[[], Service]] = {
            "actions": lambda: start_service(
                "actions",
                action_server_argv(actions_port),
                ready_url=f"http://127.0.0.1:{actions_port}/health",
                env=env,
                log_dir=folder,
            ),
            **{
                _worker(index): functools.partial(
                    start_service,
                    _worker(index),
                    _pinned(
                        rasa_server_argv(
                            model=folder / "model.tar.gz",
                            port=port,
                            credentials=credentials,
                            endpoints=folder / "endpoints.yml",
                            auth_token=token,
                        ),
                        index if pin else None,
                    ),
                    ready_url=f"http://127.0.0.1:{port}/status?token={token}",
                    env=env,
                    log_dir=folder,
                    timeout=600,
                )
                for index, port in enumerate(rasa_ports)
            },
            "edge": lambda: start_service(
                "edge",
                edge_argv(host="127.0.0.1", port=edge_port, credentials=credentials),
                ready_url=f"http://127.0.0.1:{edge_port}/health",
                env=env,
                log_dir=folder,
            ),
        }
        self.services: dict[str, Service] = {}
        started = time.perf_counter()
        self.services["actions"] = self.launchers["actions"]()  # first: Rasa calls them
        with ThreadPoolExecutor(workers) as pool:  # the Rasa workers load their model at once
            starting = {n: pool.submit(self.launchers[n]) for n in map(_worker, range(workers))}
        failed = [f.exception() for f in starting.values() if f.exception() is not None]
        self.services.update({n: f.result() for n, f in starting.items() if not f.exception()})
        if failed:
            self.stop_services()
            raise failed[0]  # type: ignore[misc]
        self.services["edge"] = self.launchers["edge"]()
        self.start_seconds = round(time.perf_counter() - started, 1)
        self.rasa_urls = [f"http://127.0.0.1:{port}" for port in rasa_ports]
        self.rasa_url = self.rasa_urls[0]
        self.edge_url = f"http://127.0.0.1:{edge_port}"
        self.client = connect(self.redis.url)

    def kill(self, name: str) -> None:
        """Kill a process at once (SIGKILL), as a crash would: ``redis`` or a service."""
        process = self.redis.process if name == "redis" else self.services[name].process
        process.kill()
        process.wait()

    def restart(self, name: str) -> None:
        """Start a killed process again, as before, and wait until it is ready."""
        if name == "redis":
            port = int(self.redis.url.rsplit(":", 1)[1].split("/")[0])
            self.redis = start_embedded(self.folder / "redis", port)
            return
        self.services[name].stop()
        self.services[name] = self.launchers[name]()

    def pids(self) -> dict[str, int]:
        found = {name: service.process.pid for name, service in self.services.items()}
        found["redis"] = self.redis.process.pid
        return found

    def cpu(self, precise: bool = False) -> dict[str, float]:
        """CPU ms so far of each process; ``rasa`` is the sum of the Rasa workers'.

        ``precise``: the running threads' nanoseconds (:func:`_thread_cpu_ms`) instead of the
        process's clock ticks, for short intervals in which no thread ends.
        """
        measure = _thread_cpu_ms if precise else _cpu_ms
        found: dict[str, float] = {}
        for name, pid in self.pids().items():
            kind = "rasa" if name.startswith("rasa") else name
            found[kind] = found.get(kind, 0.0) + measure(pid)
        return found

    def backlog(self) -> int:
        """Inbox entries not yet handled (the worker deletes each one it has finished)."""
        return int(self.client.xlen(key(self.namespace, "inbox")))

    def dead_letters(self) -> int:
        return int(self.client.xlen(key(self.namespace, "inbox", "dead")))

    def stop_services(self) -> None:
        for service in reversed(self.services.values()):
            service.stop()
        self.redis.stop()

    def stop(self) -> None:
        self.client.close()
        self.stop_services()


def _worker(index: int) -> str:
    """The service name of a Rasa worker: ``rasa`` (the one the faults kill), ``rasa-1``..."""
    return "rasa" if index == 0 else f"rasa-{index}"


def _pinned(argv: list[str], index: int | None) -> list[str]:
    """``argv`` run on one core (``taskset -c``), the index-th modulo the cores; None: as is."""
    if index is None:
        return argv
    return ["taskset", "-c", str(index % (os.cpu_count() or 1)), *argv]


# --- the measurements ---------------------------------------------------------------------------


def _loadavg() -> float:
    return round(os.getloadavg()[0], 2)


async def _step(
    stack: Stack, load: Load, mix: Mix, rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    """One open-loop step at ``rate`` messages per second."""
    messages_per_conversation = 1.2  # 60 + 2x20 + 10 + 10 messages per 100 conversations
    spacing = messages_per_conversation / rate
    conversations: list[Conversation] = []
    await _settle(stack, load, args.drain_seconds)
    cpu_before, load_before = stack.cpu(), _loadavg()
    backlog_before = stack.backlog() if load.side == "ours" else load.in_flight
    begun = time.perf_counter()
    step_end = begun + args.step_seconds
    backlog_peak = 0
    n = 0
    while True:
        due = begun + n * spacing
        if due >= step_end:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conversation = load.new(*mix.texts())
        conversations.append(conversation)
        load.start(conversation, step_end + args.drain_seconds / 2)
        n += 1
        if n % 20 == 0:
            backlog_peak = max(
                backlog_peak, stack.backlog() if load.side == "ours" else load.in_flight
            )
    await asyncio.sleep(max(0.0, step_end - time.perf_counter()))
    backlog_after = stack.backlog() if load.side == "ours" else load.in_flight
    lag = time.perf_counter() - step_end
    sent = await _drain(load, conversations, step_end, args.drain_seconds)
    cpu_after = stack.cpu()
    e2e = [ms for m in sent if (ms := m.e2e_ms()) is not None]
    acks = [m.ack_ms for m in sent if m.ack_ms is not None]
    count = max(len(sent), 1)
    per_kind: dict[str, float | None] = {}
    for kind in ("knowledge", "bins", "handoff", "out_of_scope"):
        mine = [
            ms
            for c in conversations
            if c.kind == kind
            for m in c.messages
            if (ms := m.e2e_ms()) is not None
        ]
        per_kind[kind] = _pct(mine, 0.99)
    result = {
        "rate": rate,
        "seconds": args.step_seconds,
        "conversations": len(conversations),
        "messages": len(sent),
        "sent_per_s": round(len(sent) / args.step_seconds, 1),
        "ack_p50_ms": _pct(acks, 0.5),
        "ack_p99_ms": _pct(acks, 0.99),
        "e2e_p50_ms": _pct(e2e, 0.5),
        "e2e_p99_ms": _pct(e2e, 0.99),
        "e2e_max_ms": round(max(e2e), 1) if e2e else None,
        "e2e_p99_ms_by_kind": per_kind,
        "lost": sum(1 for m in sent if not m.replies),
        "answered_in_step_per_s": round(
            sum(1 for m in sent if m.replies and m.replies[0][0] <= step_end) / args.step_seconds,
            1,
        ),
        "refused": sum(1 for m in sent if m.status != 200),
        "refusals": sum(m.refusals for m in sent),
        "duplicates": sum(m.duplicates() for m in sent),
        **_examples(conversations, step_end),
        "backlog_growth_per_s": round((backlog_after - backlog_before) / args.step_seconds, 2),
        "backlog_peak": max(backlog_peak, backlog_after),
        "generator_lag_ms": round(lag * 1000, 1),
        "cpu_ms_per_msg": {
            name: round((cpu_after[name] - cpu_before[name]) / count, 1) for name in cpu_after
        },
        "load_average": [load_before, _loadavg()],
    }
    result["cpu_ms_per_msg"]["total"] = round(sum(result["cpu_ms_per_msg"].values()), 1)
    if load.side == "ours":
        result["dead_letters"] = stack.dead_letters()
    return result


async def _drain(
    load: Load, conversations: list[Conversation], after: float, seconds: float
) -> list[Message]:
    """Wait for the replies; return the messages sent.

    Until every message sent has a reply and every conversation is over, or no longer than
    ``seconds`` after ``after`` or after the last message was sent, whichever is later (a
    second turn sent late still gets its ``seconds``: not lost for want of waiting). Then a
    moment more for late duplicates.
    """
    while True:
        sent = [m for c in conversations for m in c.messages if m.sent_at]
        if all(m.replies for m in sent) and not load.tasks:
            break
        last = max((m.sent_at for m in sent), default=after)
        if time.perf_counter() > max(after, last) + seconds:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5 if load.side == "ours" else 0.0)  # late duplicates
    return [m for c in conversations for m in c.messages if m.sent_at]


def _examples(conversations: list[Conversation], since: float) -> dict[str, list[Any]]:
    """A few lost and duplicated messages, to tell the product's faults from the bench's."""

    def shown(c: Conversation, turn: int, m: Message) -> dict[str, Any]:
        return {
            "kind": c.kind,
            "turn": turn,
            "texts": [x.text for x in c.messages],
            "status": m.status,
            "refusals": m.refusals,
            "sent_s": round(m.sent_at - since, 2),
            "replies": [[round(at - m.sent_at, 2), text[:60]] for at, text in m.replies],
        }

    every = [(c, turn, m) for c in conversations for turn, m in enumerate(c.messages)]
    return {
        "lost_examples": [shown(*x) for x in every if x[2].sent_at and not x[2].replies][:5],
        "duplicate_examples": [shown(*x) for x in every if x[2].duplicates()][:5],
    }


async def _settle(stack: Stack, load: Load, seconds: float) -> None:
    """Wait (bounded) until the previous step's backlog is gone."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if not load.tasks and (load.side == "rest" or stack.backlog() == 0):
            return
        await asyncio.sleep(0.5)


async def _one(load: Load, conversation: Conversation, turn: int, timeout: float) -> Message:
    """Send one turn and wait for its first reply."""
    await load.send(conversation, turn)
    message = conversation.messages[turn]
    deadline = time.perf_counter() + timeout
    while not message.replies and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
    return message


async def _first_message(stack: Stack, load: Load, kept: list[Script]) -> float | None:
    conversation = load.new("knowledge", [_question(kept)])
    message = await _one(load, conversation, 0, 120)
    return round(ms, 1) if (ms := message.e2e_ms()) is not None else None


async def _turns(stack: Stack, load: Load, kept: list[Script], turns: int) -> dict[str, Any]:
    """Cost per message early and late in a long conversation of answered questions.

    The long conversation is taken to ``turns - 5`` turns; then a new conversation's turns 2-6
    and the long one's last five alternate, so both are measured under the same load of the
    machine (a shared machine's load changes within minutes, and a message's CPU with it).
    The questions: the first the model answers of each of five entries, in turn.
    """
    firsts = {s.expect: s.texts[0] for s in reversed(kept) if s.kind == "knowledge"}
    answered = list(reversed(firsts.values()))[:5]
    texts = [answered[i % len(answered)] for i in range(max(turns, 7))]
    long_one, new_one = load.new("knowledge", texts), load.new("knowledge", texts[:6])
    lost = 0

    async def measured(conversation: Conversation, turn: int) -> tuple[float, float | None]:
        nonlocal lost
        before = stack.cpu(precise=True)
        message = await _one(load, conversation, turn, 30)
        await asyncio.sleep(0.05)  # let the outbox's last CPU show
        after = stack.cpu(precise=True)
        lost += not message.replies
        return sum(after[n] - before[n] for n in ("rasa", "actions", "redis")), message.e2e_ms()

    first = await measured(long_one, 0)
    for turn in range(1, len(texts) - 5):
        await measured(long_one, turn)
    await measured(new_one, 0)
    early: list[tuple[float, float | None]] = []
    late: list[tuple[float, float | None]] = []
    for turn in range(1, 6):
        early.append(await measured(new_one, turn))
        late.append(await measured(long_one, len(texts) - 6 + turn))

    def mean(values: list[Any]) -> float | None:
        known = [v for v in values if v is not None]
        return round(sum(known) / len(known), 1) if known else None

    early_cpu, late_cpu = sum(c for c, _ in early), sum(c for c, _ in late)
    ratio = late_cpu / early_cpu if early_cpu else None
    return {
        "turns": len(texts),
        "lost": lost,
        "first_turn": {"cpu_ms": round(first[0], 1), "e2e_ms": first[1]},
        "early": {
            "turns": "2-6",
            "cpu_ms": mean([c for c, _ in early]),
            "e2e_ms": mean([ms for _, ms in early]),
        },
        "late": {
            "turns": f"{len(texts) - 4}-{len(texts)}",
            "cpu_ms": mean([c for c, _ in late]),
            "e2e_ms": mean([ms for _, ms in late]),
        },
        "ratio": round(ratio, 2) if ratio is not None else None,
        "cpu_note": "Rasa server + action server + Redis CPU per message, "
        "/proc/<pid>/task/*/schedstat (ns); a new conversation's turns 2-6 alternate with "
        "the long one's last five",
    }


FAULTS = (
    ("action_server", "actions", 14.0),  # the 14 s outage
    ("rasa_worker", "rasa", 0.0),  # restarted at once: the outage is its start-up
    ("redis", "redis", 5.0),
)


async def _fault(
    stack: Stack, load: Load, mix: Mix, name: str, process: str, outage: float, args: Any
) -> dict[str, Any]:
    """Open-loop load at ``--fault-rate``; ``process`` killed a quarter in, restarted later."""
    await _settle(stack, load, args.drain_seconds)
    spacing = 1.2 / args.fault_rate
    seconds = args.fault_seconds
    conversations: list[Conversation] = []
    begun = time.perf_counter()
    end = begun + seconds
    kill_at = begun + seconds / 4

    async def fault() -> tuple[float, float]:
        await asyncio.sleep(max(0.0, kill_at - time.perf_counter()))
        killed = time.perf_counter()
        stack.kill(process)
        await asyncio.sleep(outage)
        await asyncio.to_thread(stack.restart, process)
        return killed, time.perf_counter()

    faulting = asyncio.create_task(fault())
    n = 0
    while (due := begun + n * spacing) < end:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conversation = load.new(*mix.texts())
        conversations.append(conversation)
        load.start(conversation, end + args.fault_drain / 2)
        n += 1
    killed, ready = await faulting
    sent = await _drain(load, conversations, max(end, ready), args.fault_drain)
    hit = [m for m in sent if m.sent_at <= ready]  # sent before the process was back
    answered = [m.replies[0][0] for m in hit if m.replies]
    lost = [m for m in sent if not m.replies]
    return {
        "fault": f"{process} killed (SIGKILL) {seconds / 4:g} s into the run, "
        f"restarted {outage:g} s later",
        "rate": args.fault_rate,
        "messages": len(sent),
        "refused_by_edge": sum(1 for m in sent if m.refusals),
        "lost": len(lost),
        "lost_kinds": sorted({c.kind for c in conversations for m in c.messages if m in lost}),
        "duplicates": sum(m.duplicates() for m in sent),
        "restart_seconds": round(ready - killed, 1),
        # from the kill until every message sent before the restart was answered (None: some
        # never were)
        "recovery_seconds": round(max(answered) - killed, 1)
        if answered and len(answered) == len(hit)
        else None,
        "lost_sent_before_kill": sum(1 for m in lost if m.sent_at < killed),
        "lost_sent_during_outage": sum(1 for m in lost if killed <= m.sent_at <= ready),
        "lost_sent_after_restart": sum(1 for m in lost if m.sent_at > ready),
        "e2e_p99_ms": _pct([ms for m in sent if (ms := m.e2e_ms()) is not None], 0.99),
        "dead_letters": stack.dead_letters(),
        **_examples(conversations, killed),
    }


async def _faults(stack: Stack, kept: list[Script], args: Any) -> dict[str, Any]:
    """Ours under load with each of :data:`FAULTS` in turn (the ``faults`` key)."""
    mix = Mix(11, kept)
    found: dict[str, Any] = {
        "measured_at": _now(),
        "machine_shared": args.shared,
        "load_average_at_start": list(os.getloadavg()),
    }
    print("faults:", flush=True)
    async with Load("ours", stack.edge_url, stack.rasa_urls, None) as load:
        args.route_replies(load)
        await _warm(stack, load, kept)
        for name, process, outage in FAULTS:
            found[name] = await _fault(stack, load, mix, name, process, outage, args)
            print(f"  fault {name}: {json.dumps(found[name])}", flush=True)
    return found


def _summary(
    steps: list[dict[str, Any]], turns: dict[str, Any] | None, first: float | None
) -> dict[str, Any]:
    good = [
        s
        for s in steps
        if s["lost"] == 0
        and s["e2e_p99_ms"] is not None
        and s["e2e_p99_ms"] <= 1000
        and s["duplicates"] == 0
    ]
    best = max(good, key=lambda s: s["rate"]) if good else None
    at = best or (steps[0] if steps else None)
    return {
        "max_rate_p99_under_1s": best["rate"] if best else 0,
        "e2e_p99_ms_at_max": best["e2e_p99_ms"] if best else None,
        "lost": sum(s["lost"] for s in steps),
        "duplicates": sum(s["duplicates"] for s in steps),
        "cpu_ms_per_msg": at["cpu_ms_per_msg"] if at else None,
        "cpu_ms_per_msg_at": at["rate"] if at else None,
        "turn50_over_turn1": turns["ratio"] if turns else None,
        "turns": turns,
        "first_message_ms": first,
        "steps": steps,
    }


async def _check_mix(stack: Stack) -> tuple[list[Script], dict[str, Any]]:
    """Each conversation of the mix once through REST: keep those the model answers as meant.

    A knowledge-base question is kept when its own entry answers it (the ``kb_entry`` slot),
    a handoff or out-of-scope message when the conversation is paused for a person, a bin
    conversation when ``action_bin_collection_day`` runs; what is dropped is listed with what
    happened instead, so a model's drift shows in the results rather than in the mix's load.
    """
    kept: list[Script] = []
    dropped: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        for script in scripts():
            sender = f"bench-check-{uuid.uuid4().hex[:12]}"
            for text in script.texts:
                body = {"sender": sender, "message": text}
                url = f"{stack.rasa_url}/webhooks/rest/webhook"
                async with session.post(url, json=body) as answer:
                    await answer.read()
            url = f"{stack.rasa_url}/conversations/{sender}/tracker"
            async with session.get(url, params={"token": stack.token}) as answer:
                events = (await answer.json())["events"]
            entries = [
                e["value"] for e in events if e["event"] == "slot" and e["name"] == "kb_entry"
            ]
            actions = [e["name"] for e in events if e["event"] == "action"]
            done = {
                "handoff": any(e["event"] == "pause" for e in events),
                "bin_day": "action_bin_collection_day" in actions,
            }.get(script.expect, script.expect in entries)
            if done:
                kept.append(script)
                continue
            intents = [
                e["parse_data"]["intent"].get("name") for e in events if e["event"] == "user"
            ]
            got = [v for v in entries if v] or [a for a in actions if a != "action_listen"][-2:]
            dropped.append(
                {
                    "texts": list(script.texts),
                    "expect": script.expect,
                    "intents": intents,
                    "got": got,
                }
            )
    checked = len(kept) + len(dropped)
    print(f"mix: {len(kept)} of {checked} conversations answered as meant", flush=True)
    return kept, {"checked": checked, "kept": len(kept), "dropped": dropped}


async def run_side(
    stack: Stack,
    side: str,
    args: argparse.Namespace,
    rates: list[float],
    kept: list[Script],
    *,
    first: bool,
    turns: int,
) -> dict[str, Any]:
    """The stepped rates on one side, then (``turns`` > 0) the long conversation."""
    load = Load(side, stack.edge_url, stack.rasa_urls, None)
    async with load:
        if side == "ours":
            args.route_replies(load)
        first_ms = await _first_message(stack, load, kept) if first else None
        await _warm(stack, load, kept)
        mix = Mix(7, kept)  # the same messages on both sides
        steps: list[dict[str, Any]] = []
        for rate in rates:
            step = await _step(stack, load, mix, rate, args)
            steps.append(step)
            print(
                f"  {side} {rate:g}/s: {json.dumps({k: step[k] for k in SHOWN})} "
                f"cpu {step['cpu_ms_per_msg']}",
                flush=True,
            )
            if (
                step["e2e_p99_ms"] is None
                or step["e2e_p99_ms"] > args.stop_after_ms
                or step["lost"] > step["messages"] // 4
            ):
                print(f"  {side}: saturated at {rate:g}/s, higher rates skipped", flush=True)
                await _settle(stack, load, args.drain_seconds * 3)
                break
        long_conversation = await _turns(stack, load, kept, turns) if turns else None
        if long_conversation is not None:
            print(f"  {side} turns: {json.dumps(long_conversation)}", flush=True)
    return _summary(steps, long_conversation, first_ms)


def _question(kept: list[Script]) -> str:
    """A knowledge-base question the model answers (warm-ups, the first message)."""
    return next(s.texts[0] for s in kept if s.kind == "knowledge")


async def _warm(stack: Stack, load: Load, kept: list[Script]) -> None:
    """A question through each Rasa worker's REST channel (a worker's first one is slow)."""
    assert load.session is not None
    for index, url in enumerate(stack.rasa_urls):
        sender = f"bench-warm-{index}-{uuid.uuid4().hex[:8]}"
        body = {"sender": sender, "message": _question(kept)}
        async with load.session.post(f"{url}/webhooks/rest/webhook", json=body) as answer:
            await answer.read()


async def _scale(
    args: argparse.Namespace, rates: list[float], provider_url: str, kept: list[Script] | None
) -> dict[str, Any]:
    """Ours at the same rates with one Rasa worker, then two, each pinned to a core."""
    found: dict[int, dict[str, Any]] = {}
    load_before = list(os.getloadavg())
    for workers in (1, 2):
        print(f"scale: {workers} Rasa worker(s) pinned:", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-fullstack-") as folder:
            stack = await asyncio.to_thread(
                Stack, Path(folder), args.model, provider_url, workers, True
            )
            try:
                if kept is None:
                    kept, _ = await _check_mix(stack)
                found[workers] = await run_side(
                    stack, "ours", args, rates, kept, first=False, turns=0
                )
            finally:
                await asyncio.to_thread(stack.stop)

    def capacity(summary: dict[str, Any]) -> float:
        return max((s["answered_in_step_per_s"] for s in summary["steps"]), default=0.0)

    one, two = found[1], found[2]
    rate_ratio = (
        two["max_rate_p99_under_1s"] / one["max_rate_p99_under_1s"]
        if one["max_rate_p99_under_1s"]
        else None
    )
    capacity_ratio = capacity(two) / capacity(one) if capacity(one) else None
    return {
        "measured_at": _now(),
        "machine": f"{os.cpu_count()} cores",
        "machine_shared": args.shared,
        "pinned": True,
        "rates": rates,
        "step_seconds": args.step_seconds,
        "one_worker_rate": one["max_rate_p99_under_1s"],
        "two_worker_rate": two["max_rate_p99_under_1s"],
        "ratio": round(rate_ratio, 2) if rate_ratio is not None else None,
        "one_worker_capacity_per_s": capacity(one),
        "two_worker_capacity_per_s": capacity(two),
        "capacity_ratio": round(capacity_ratio, 2) if capacity_ratio is not None else None,
        "capacity_note": "messages answered within a step per second of it, the highest step's: "
        "what the workers keep up with once saturated",
        "load_average_at_start": load_before,
        "load_average_at_end": list(os.getloadavg()),
        "one_worker": one,
        "two_workers": two,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _facts(args: argparse.Namespace, rates: list[float], stack: Stack) -> dict[str, Any]:
    """What the side-by-side run was measured on (the results' top level)."""
    found: dict[str, Any] = {
        "measured_at": _now(),
        "machine": f"{os.cpu_count()} cores",
        "load_average_at_start": list(os.getloadavg()),
        "machine_shared": args.shared,
        "mix": "60% knowledge-base question, 20% two-turn bin day, 10% asks for a person, "
        "10% out of scope; each conversation a new resident; WhatsApp and Telegram alternate",
        "rates": rates,
        "step_seconds": args.step_seconds,
        "drain_seconds": args.drain_seconds,
        "short": args.short,
        "start_seconds": stack.start_seconds,
        "rasa_workers": stack.workers,
        "pinned": stack.pinned,
    }
    if args.shared:
        found["machine_note"] = (
            "shared machine: other engineers' tests and model training ran on the same 2 cores "
            "during this run (see load_average per step): latencies are pessimistic"
        )
    return found


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parts asked for (``args.parts``); return their results' keys only."""
    rates = [float(r) for r in args.rates.split(",")]
    loop = asyncio.get_running_loop()
    current: dict[str, Load] = {}

    def on_reply(resident: str, text: str, arrived: float) -> None:
        if "load" in current:
            loop.call_soon_threadsafe(current["load"].on_reply, resident, text, arrived)

    args.route_replies = lambda load: current.__setitem__("load", load)
    provider = ProviderThread()
    provider.fake = StampingProvider(on_reply)
    provider.start()
    results: dict[str, Any] = {}
    kept: list[Script] | None = None
    try:
        if {"sides", "faults"} & args.parts:
            with tempfile.TemporaryDirectory(prefix="bench-fullstack-") as folder:
                stack = await asyncio.to_thread(
                    Stack, Path(folder), args.model, provider.url, args.workers, args.pin
                )
                try:
                    kept, check = await _check_mix(stack)
                    if "sides" in args.parts:
                        results.update(_facts(args, rates, stack), mix_check=check)
                        first = True  # only the first message after the start is a warm-up
                        for side, name in (("ours", "ours"), ("rest", "rasa_rest")):
                            print(f"{name}:", flush=True)
                            results[name] = await run_side(
                                stack, side, args, rates, kept, first=first, turns=args.turns
                            )
                            current.pop("load", None)
                            first = False
                        results["load_average_at_end"] = list(os.getloadavg())
                    if "faults" in args.parts:  # last: they kill the stack's processes
                        results["faults"] = await _faults(stack, kept, args)
                        current.pop("load", None)
                finally:
                    await asyncio.to_thread(stack.stop)
        if "scale" in args.parts:
            results["scale"] = await _scale(args, rates, provider.url, kept)
            current.pop("load", None)
    finally:
        provider.stop()
    return results


def _table(results: dict[str, Any]) -> str:
    scale = results.get("scale")
    shown = (
        [
            f"scale ({'pinned' if scale['pinned'] else 'not pinned'}): max rate p99 <= 1 s "
            f"{scale['one_worker_rate']} -> {scale['two_worker_rate']} (x{scale['ratio']}); "
            f"capacity {scale['one_worker_capacity_per_s']} -> {scale['two_worker_capacity_per_s']}"
            f" msgs/s (x{scale['capacity_ratio']})"
        ]
        if scale
        else []
    )
    faults = results.get("faults") or {}
    shown += [
        f"fault {name}: lost {f['lost']}, duplicates {f['duplicates']}, "
        f"recovery {f['recovery_seconds']} s"
        for name, _, _ in FAULTS
        if (f := faults.get(name))
    ]
    if "ours" not in results:
        return "\n".join(shown)
    return "\n".join([_sides_table(results), *shown])


def _sides_table(results: dict[str, Any]) -> str:
    lines = [f"{'':<26}{'ours':>12}{'rasa_rest':>12}"]
    for row in (
        "max_rate_p99_under_1s",
        "e2e_p99_ms_at_max",
        "lost",
        "duplicates",
        "turn50_over_turn1",
        "first_message_ms",
    ):
        cells = [str(results[s].get(row)) for s in ("ours", "rasa_rest")]
        lines.append(f"{row:<26}{cells[0]:>12}{cells[1]:>12}")
    for side in ("ours", "rasa_rest"):
        lines.append(
            f"{side}: rate  ack_p99  e2e_p50  e2e_p99  lost  dup  backlog/s  "
            "cpu ms/msg (rasa, actions, edge, redis)"
        )
        for s in results[side]["steps"]:
            cpu = s["cpu_ms_per_msg"]
            lines.append(
                f"  {s['rate']:>6g} {s['ack_p99_ms']!s:>8} {s['e2e_p50_ms']!s:>8} "
                f"{s['e2e_p99_ms']!s:>8} "
                f"{s['lost']:>5} {s['duplicates']:>4} {s['backlog_growth_per_s']:>9}  "
                f"{cpu.get('rasa')}, {cpu.get('actions')}, {cpu.get('edge')}, {cpu.get('redis')}"
            )
    return "\n".join(lines)


PARTS = ("sides", "faults", "scale")
NUMBERS: tuple[tuple[str, type, float, str], ...] = (
    ("--step-seconds", float, 30.0, "length of each rate's step"),
    ("--drain-seconds", float, 20.0, "s to wait for a step's replies"),
    ("--turns", int, 50, "turns of the long conversation"),
    ("--stop-after-ms", float, 5000.0, "e2e p99 that ends a side's steps"),
    ("--fault-rate", float, 5.0, "msgs/s during faults"),
    ("--fault-seconds", float, 40.0, "length of each fault's run"),
    ("--fault-drain", float, 120.0, "s to wait for a fault run's replies"),
    ("--workers", int, 2, "Rasa workers sharing the inbox (sides, faults)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", default=",".join(f"{r:g}" for r in RATES), help="msgs/s, comma-separated"
    )
    for name, kind, default, text in NUMBERS:
        parser.add_argument(name, type=kind, default=default, help=text)
    parser.add_argument(
        "--short", action="store_true", help="development run: 5,20 msg/s, 10 s steps, 20 turns"
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run this part only (repeatable), saved into the results already in --out; "
        "default: every part",
    )
    parser.add_argument("--pin", action="store_true", help="--workers on a core each (taskset)")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--as-before", action="store_true", help="save under 'before' (a baseline)")
    parser.add_argument(
        "--quiet-machine", dest="shared", action="store_false", help="nothing else ran"
    )
    args = parser.parse_args()
    if args.short:
        args.rates, args.step_seconds, args.drain_seconds, args.turns = "5,20", 10.0, 10.0, 20
    if not args.model.exists():
        parser.error(f"no model at {args.model}: run `make train` first")
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    args.parts = set(args.only or PARTS)
    results = asyncio.run(bench(args))
    print(_table(results), flush=True)
    kept = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.as_before:
        kept["before"] = results
    else:  # the parts run replace theirs; the others (and "before") are kept
        kept.update(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(kept, indent=2) + "\n")
    print(f"saved {sorted(results)} in {args.out}", flush=True)


if __name__ == "__main__":
    main()
