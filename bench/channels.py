"""Channels benchmark (``make bench-channels``): our four webhooks vs Rasa's REST channel.

Each side runs as its own server process on loopback (a Sanic app with the input channels
registered exactly as ``rasa run`` registers them). Both use the same stand-in agent, which
answers every message at once with ``ack:<id>``: a trained model is not loaded (training takes
many minutes on this shared machine), so the figures measure the channel path (verification,
durable queueing, workers, outbound sending), not NLU. The JSON says so (``agent``).

Load: ``--messages`` signed inbound messages spread over the four channels and ``--residents``
residents, sent by ``--concurrency`` clients as fast as the server takes them (or at ``--rate``
messages per second, to measure latency at a rate the server sustains), with 1% replays
of an earlier message and 1% bad signatures mixed in. Our replies go out through the outbox to a
local fake provider API, which records their arrival; Rasa REST answers in the HTTP response
(its replies arrive when the response does, and it has no signatures or de-duplication, so its
replays produce duplicate replies and its bad-signature requests are answered).

Reports per side: messages, msgs_per_s, ack_p50_ms/ack_p99_ms (webhook answer), e2e_p50_ms/
e2e_p99_ms (webhook in to reply at the provider), lost (good messages never answered),
duplicates (replies beyond one per message), peak_rss_mb (server process).
Writes bench/results/channels.json. Needs REDIS_URL or TEST_REDIS_URL; not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
from aiohttp import web  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "channels.json"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
TWILIO_SID = "AC00000000000000000000000000000001"
NUMBER = "+441234567890"
APP_SECRET = "bench-app-secret"
PAGE = "104857600000001"
CONSUMER_SECRET = "bench-consumer-secret"
X_ACCOUNT = "1422000000000000001"
TG_SECRET = "bench_secret_token"
ACK = re.compile(r"ack:([A-Za-z0-9_.-]+)")


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(int(share * len(ordered)) - 1, 0)], 2) if ordered else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the server process -------------------------------------------------------------------


class EchoAgent:
    """Stands in for Rasa's agent: one immediate reply naming the message."""

    async def handle_message(self, message: Any) -> None:
        found = ACK.search(f"ack:{(message.text or '').removeprefix('bench ')}")
        await message.output_channel.send_text_message(
            message.sender_id, f"ack:{found.group(1) if found else '?'}"
        )


def serve(side: str, port: int, provider: str) -> None:
    from rasa.core.channels.channel import register
    from rasa.core.channels.rest import RestInput
    from sanic import Sanic

    from bot.channels.messenger import MessengerAdapter, MessengerPage
    from bot.channels.rasa import MessengerInput, TelegramInput, TwitterInput, WhatsAppInput
    from bot.channels.telegram import TelegramAdapter, TelegramBotAccount
    from bot.channels.twilio import TwilioAccount, TwilioAdapter
    from bot.channels.twitter import TwitterAccount, TwitterAdapter

    app = Sanic(f"bench_{side}")
    app.ctx.agent = EchoAgent()
    channels: list[Any]
    if side == "ours":
        channels = [
            WhatsAppInput(
                TwilioAdapter(
                    [TwilioAccount(NUMBER, TWILIO_SID, TWILIO_TOKEN)], api_base_url=provider
                )
            ),
            MessengerInput(
                MessengerAdapter(
                    [MessengerPage(PAGE, "page-token")],
                    app_secret=APP_SECRET,
                    verify_token="v",
                    api_base_url=provider,
                )
            ),
            TwitterInput(
                TwitterAdapter(
                    [TwitterAccount(X_ACCOUNT, "token")],
                    consumer_secret=CONSUMER_SECRET,
                    api_base_url=provider,
                )
            ),
            TelegramInput(
                TelegramAdapter(
                    [TelegramBotAccount("councilbot", "1:bench", TG_SECRET)], api_base_url=provider
                )
            ),
        ]
    else:
        channels = [RestInput()]
    register(channels, app, route="/webhooks/")
    app.run(host="127.0.0.1", port=port, access_log=False, workers=1)


# --- the fake provider ----------------------------------------------------------------------


class Provider:
    """Records the arrival time of each ``ack:<id>`` reply."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode(errors="replace")
        found = ACK.search(body.replace("%3A", ":"))
        n = len(self.counts)
        if found:
            self.counts[found.group(1)] += 1
            self.arrivals.setdefault(found.group(1), time.perf_counter())
        path = request.path
        if path.endswith("/Messages.json"):
            return web.json_response({"sid": f"SM{n:032d}", "status": "queued"}, status=201)
        if path.endswith("/sendMessage"):
            result = {"message_id": n, "date": 1, "chat": {"id": 1, "type": "private"}}
            return web.json_response({"ok": True, "result": result})
        if path.endswith("/me/messages"):
            return web.json_response({"recipient_id": "1", "message_id": f"m_{n}"})
        return web.json_response({"data": {"dm_event_id": str(n)}}, status=201)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = _free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# --- the load -------------------------------------------------------------------------------


def _request(
    side: str, base: str, n: int, resident: int, bad: bool
) -> tuple[str, str, bytes, dict[str, str]]:
    """(id, url, body, headers) of message ``n`` from ``resident``."""
    text = f"bench {side[0]}{n}"
    ident = f"{side[0]}{n}"
    if side == "rest":
        body = json.dumps({"sender": f"resident{resident}", "message": text}).encode()
        return ident, f"{base}/webhooks/rest/webhook", body, {"Content-Type": "application/json"}
    channel = ("whatsapp", "messenger", "twitter", "telegram")[n % 4]
    url = f"{base}/webhooks/{channel}/webhook"
    now_ms = int(time.time() * 1000)
    if channel == "whatsapp":
        params = {
            "MessageSid": f"SM{n:032d}",
            "AccountSid": TWILIO_SID,
            "From": f"whatsapp:+4477{resident:08d}",
            "To": f"whatsapp:{NUMBER}",
            "Body": text,
            "NumMedia": "0",
        }
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, params)
        headers = {
            # change the first character (to one it is not) so a bad signature is never valid
            "X-Twilio-Signature": ("B" if signature[0] == "A" else "A") + signature[1:]
            if bad
            else signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return ident, url, urlencode(params).encode(), headers
    if channel == "messenger":
        event = {
            "sender": {"id": str(resident)},
            "recipient": {"id": PAGE},
            "timestamp": now_ms,
            "message": {"mid": f"m_{n}", "text": text},
        }
        body = json.dumps({"object": "page", "entry": [{"id": PAGE, "messaging": [event]}]})
        digest = hmac.new(APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": "sha256=" + ("0" * 64 if bad else digest)}
        return ident, url, body.encode(), {**headers, "Content-Type": "application/json"}
    if channel == "twitter":
        dm = {
            "type": "message_create",
            "id": str(n),
            "created_timestamp": str(now_ms),
            "message_create": {
                "target": {"recipient_id": X_ACCOUNT},
                "sender_id": str(resident),
                "message_data": {"text": text},
            },
        }
        body = json.dumps({"for_user_id": X_ACCOUNT, "direct_message_events": [dm]})
        digest = hmac.new(CONSUMER_SECRET.encode(), body.encode(), hashlib.sha256).digest()
        signature = "sha256=" + base64.b64encode(digest).decode()
        headers = {"x-twitter-webhooks-signature": "sha256=AAAA" if bad else signature}
        return ident, url, body.encode(), {**headers, "Content-Type": "application/json"}
    update = {
        "update_id": n,
        "message": {
            "message_id": n,
            "from": {"id": resident, "is_bot": False, "first_name": "R"},
            "chat": {"id": resident, "type": "private"},
            "date": now_ms // 1000,
            "text": text,
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong" if bad else TG_SECRET}
    return ident, url, json.dumps(update).encode(), {**headers, "Content-Type": "application/json"}


async def _wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as answer:
                    if answer.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


async def run_side(side: str, args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    provider = Provider()
    await provider.start()
    port = _free_port()
    namespace = f"bench:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "REDIS_URL": redis_url, "COUNCIL_NAMESPACE": namespace}
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", side, str(port), provider.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = psutil.Process(server.pid)
    peak = 0.0
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_up(f"{base}/webhooks/{'rest' if side == 'rest' else 'telegram'}/")
        rng = random.Random(3)
        plan: list[tuple[str, bool, bool]] = []  # (id, replay, bad)
        requests: list[tuple[str, str, bytes, dict[str, str]]] = []
        for n in range(args.messages):
            roll = rng.random()
            if roll < 0.01 and requests:
                requests.append(rng.choice(requests))  # a provider retry
                plan.append((requests[-1][0], True, False))
                continue
            bad = roll < 0.02
            requests.append(_request(side, base, n, rng.randrange(args.residents), bad))
            plan.append((requests[-1][0], False, bad))
        sent_at: dict[str, float] = {}
        acks: list[float] = []
        rest_replies: Counter[str] = Counter()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(requests)):
            queue.put_nowait(index)

        async def client(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                index = queue.get_nowait()
                if args.rate:  # open loop: request n leaves at n / rate seconds
                    await asyncio.sleep(max(0.0, started + index / args.rate - time.perf_counter()))
                ident, url, body, headers = requests[index]
                begun = time.perf_counter()
                sent_at.setdefault(ident, begun)
                async with session.post(url, data=body, headers=headers) as answer:
                    text = await answer.text()
                done = time.perf_counter()
                acks.append((done - begun) * 1000)
                if side == "rest" and answer.status == 200:
                    for reply in json.loads(text):
                        found = ACK.search(reply.get("text", ""))
                        if found:
                            rest_replies[found.group(1)] += 1
                            provider.arrivals.setdefault(found.group(1), done)

        async def sample() -> None:
            nonlocal peak
            while True:
                try:
                    peak = max(peak, process.memory_info().rss / 2**20)
                except psutil.Error:
                    return
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(client(session) for _ in range(args.concurrency)))
        good = {ident for ident, replay, bad in plan if not replay and not bad}
        deadline = time.perf_counter() + args.drain
        while time.perf_counter() < deadline and not good <= provider.arrivals.keys():
            await asyncio.sleep(0.1)
        elapsed = max(provider.arrivals.values(), default=time.perf_counter()) - started
        sampler.cancel()
        counts = rest_replies if side == "rest" else provider.counts
        e2e = [(provider.arrivals[i] - sent_at[i]) * 1000 for i in good if i in provider.arrivals]
        return {
            "messages": len(requests),
            "good_messages": len(good),
            "replays": sum(1 for _, replay, _ in plan if replay),
            "bad_signatures": sum(1 for _, _, bad in plan if bad),
            "msgs_per_s": round(len(requests) / elapsed, 1),
            "ack_p50_ms": _pct(acks, 0.5),
            "ack_p99_ms": _pct(acks, 0.99),
            "e2e_p50_ms": _pct(e2e, 0.5),
            "e2e_p99_ms": _pct(e2e, 0.99),
            "lost": len(good - provider.arrivals.keys()),
            "duplicates": sum(count - 1 for count in counts.values() if count > 1),
            "bad_signatures_answered": sum(
                1 for ident, _, bad in plan if bad and counts.get(ident)
            ),
            "peak_rss_mb": round(peak, 1),
        }
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        await provider.stop()
        from bot.redis_conn import connect

        client = connect(redis_url)
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    redis_url = os.environ.get("REDIS_URL") or os.environ.get(
        "TEST_REDIS_URL", "redis://127.0.0.1:6379/0"
    )
    results: dict[str, Any] = {
        "agent": "echo stand-in for Rasa's agent (no NLU): measures the channel path only",
        "residents": args.residents,
        "concurrency": args.concurrency,
        "rate": args.rate or "max",
    }
    for side in ("ours", "rasa_rest"):
        results[side] = await run_side("rest" if side == "rasa_rest" else "ours", args, redis_url)
        print(side, json.dumps(results[side]), flush=True)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--residents", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="msgs/s; 0: as fast as taken")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for replies")
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
