"""Knowledge-base benchmark: our selection vs Rasa's ResponseSelector (``make bench-knowledge``).

Ours: ``--entries`` synthetic entries published to Redis, selection latency (message embedding +
ranking, through ``KnowledgeBase.select``), the time from a publish until a second
``KnowledgeBase`` (another server) serves the new text, and peak RSS.
Rasa: the same kind of entries as retrieval intents (``faq/<id>``) trained with
``ResponseSelector`` through Rasa's API (same sentence featurizer, plus the
CountVectorsFeaturizer Rasa requires); its publish-to-live time is its
training time plus model loading (about 16 minutes for 5,000 entries on 2 cores). Each side
runs in its own process so peak RSS is its own.

Writes bench/results/knowledge.json. Needs REDIS_URL (or TEST_REDIS_URL); not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.knowledge.model import Entry  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "knowledge.json"
SERVICES = [
    "bulky waste", "garden waste", "recycling box", "food caddy", "council tax", "parking permit",
    "parking fine", "street light", "pothole", "fly-tipping", "planning application",
    "housing repair", "library card", "school place", "blue badge", "pest control",
    "noise complaint", "dropped kerb", "tree preservation", "allotment",
]  # fmt: skip
ASKS = [
    ("How do I apply for {s} at {p}?", "Can I get {s} sorted for {p}?"),
    ("What does {s} cost in {p}?", "Price of {s} around {p}"),
    ("Who do I contact about {s} near {p}?", "Phone number for {s} in {p}"),
    ("When is {s} available at {p}?", "Opening times for {s} at {p}"),
    ("How do I cancel {s} for {p}?", "Stop my {s} at {p}"),
]
KINDS = ("Road", "Street", "Lane", "Close", "Avenue", "Way", "Gardens", "Court", "Drive", "Row")
PLACES = [f"{name} {kind}" for name in (
    "Elm", "Oak", "Mill", "Church", "Station", "Park", "Victoria", "King", "Queen", "High",
    "Bridge", "Market", "North", "South", "West", "East", "Green", "Manor", "Castle", "Forest",
    "Hill", "Lake", "Orchard", "Meadow", "Riverside",
) for kind in KINDS]  # fmt: skip


PUBLISH_WAIT_S = 60.0  # far beyond the measured publish-to-live times


def make_entries(n: int, questions: int) -> list[Entry]:
    """``n`` distinct entries with ``questions`` example questions each."""
    entries = []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        ask = ASKS[(i // len(SERVICES)) % len(ASKS)]
        place = PLACES[(i // (len(SERVICES) * len(ASKS))) % len(PLACES)]
        place = f"{place} {i // (len(SERVICES) * len(ASKS) * len(PLACES)) + 1}"
        entries.append(
            Entry(
                id=f"entry-{i:05d}",
                topic=service.replace(" ", "_").replace("-", "_"),
                questions=tuple(q.format(s=service, p=place) for q in ask[:questions]),
                answers={"default": f"Answer {i} about {service} at {place}."},
                owner_team="Bench",
                review_by=date(2030, 1, 1),
                status="published",
            )
        )
    return entries


def _cuts(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100)
    return round(cuts[49], 3), round(cuts[98], 3)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _ours(url: str, n: int, questions: int, queries: int) -> dict[str, Any]:
    from bot.keys import prefix
    from bot.knowledge.embedding import CachingEncoder, default_encoder
    from bot.knowledge.store import KnowledgeBase
    from bot.redis_conn import connect_async
    from bot.testing.cleanup import delete_keys_async

    namespace = f"bench:{uuid.uuid4().hex[:10]}"
    editor_client, server_client = await connect_async(url), await connect_async(url)
    encoder = CachingEncoder(default_encoder(str(ROOT / "config.yml")))
    entries = make_entries(n, questions)
    try:
        editor = KnowledgeBase(editor_client, namespace, encoder=encoder)
        for entry in entries:
            await editor.import_entry(entry, "bench", "bench")
        # the server embeds with its own cache, as another process would
        server = KnowledgeBase(
            server_client, namespace, encoder=default_encoder(str(ROOT / "config.yml"))
        )
        began = time.perf_counter()
        await server.refresh(force=True)
        index_s = time.perf_counter() - began
        now = datetime.now(UTC)
        samples = [entries[(i * 7919) % n] for i in range(queries)]
        timings, hits = [], 0
        for entry in samples:
            text = entry.questions[-1].replace("?", "").lower()
            began = time.perf_counter()
            found = await server.select(None, 0.0, text, "web", now)
            timings.append((time.perf_counter() - began) * 1000)
            hits += bool(found and found[0].id == entry.id)
        p50, p99 = _cuts(timings)
        target = entries[n // 2]
        # a new question too, so the serving side has to embed something
        edited = Entry.from_dict(
            target.to_dict()
            | {
                "answers": {"default": "New text published now."},
                "questions": [*target.questions, f"Newly added question {uuid.uuid4().hex}"],
            }
        )
        await editor.save_draft(edited, "bench", "bench")
        await server.select(None, 0.0, target.questions[0], "web", now)  # warm, pre-publish
        began = time.perf_counter()
        await editor.publish(target.id, "bench", "bench")
        while True:
            found = await server.select(None, 0.0, target.questions[0], "web", datetime.now(UTC))
            if found and found[0].answers["default"] == "New text published now.":
                break
            if time.perf_counter() - began > PUBLISH_WAIT_S:
                # e.g. a handful of entries: the on-topic margin may decline to pick one
                raise SystemExit(
                    f"the published entry was not selected within {PUBLISH_WAIT_S} s "
                    f"(selected: {found[0].id if found else None})"
                )
            await asyncio.sleep(0.05)
        publish_s = time.perf_counter() - began
    finally:
        await delete_keys_async(editor_client, prefix(namespace))
        await editor_client.close()
        await server_client.close()
    return {
        "entries": n,
        "questions_per_entry": questions,
        "select_p50_ms": p50,
        "select_p99_ms": p99,
        "top1_accuracy": round(hits / queries, 3),
        "publish_to_live_s": round(publish_s, 3),
        "initial_index_s": round(index_s, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _rasa(n: int, questions: int, queries: int, epochs: int) -> dict[str, Any]:
    import yaml
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    entries = make_entries(n, questions)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = yaml.safe_load((ROOT / "config.yml").read_text())
        featurizer = next(s for s in config["pipeline"] if "Featurizer" in s["name"])
        config["pipeline"] = [
            {"name": "WhitespaceTokenizer"},
            featurizer,
            # our featurizer is not a rasa Featurizer subclass; ResponseSelector requires one
            {"name": "CountVectorsFeaturizer"},
            {"name": "ResponseSelector", "epochs": epochs, "retrieval_intent": "faq"},
        ]
        config.pop("policies", None)
        (work / "config.yml").write_text(yaml.safe_dump(config))
        nlu = [
            {"intent": f"faq/{e.id}", "examples": "".join(f"- {q}\n" for q in e.questions)}
            for e in entries
        ]
        (work / "nlu.yml").write_text(yaml.safe_dump({"version": "3.1", "nlu": nlu}, width=1000))
        domain = {
            "version": "3.1",
            "intents": ["faq"],
            "responses": {f"utter_faq/{e.id}": [{"text": e.answers["default"]}] for e in entries},
        }
        (work / "domain.yml").write_text(yaml.safe_dump(domain, width=1000))
        began = time.perf_counter()
        model = train_nlu(
            str(work / "config.yml"), str(work / "nlu.yml"), str(work / "models"),
            domain=str(work / "domain.yml"),
        )  # fmt: skip
        agent = Agent.load(model)
        publish_s = time.perf_counter() - began

        async def parse_all() -> tuple[list[float], int]:
            timings, hits = [], 0
            for i in range(queries):
                entry = entries[(i * 7919) % n]
                text = entry.questions[-1].replace("?", "").lower()
                began = time.perf_counter()
                parsed = await agent.parse_message(text)
                timings.append((time.perf_counter() - began) * 1000)
                chosen = parsed["response_selector"]["faq"]["response"]["intent_response_key"]
                hits += chosen == f"faq/{entry.id}"
            return timings, hits

        timings, hits = asyncio.run(parse_all())
    p50, p99 = _cuts(timings)
    return {
        "entries": n,
        "questions_per_entry": questions,
        "epochs": epochs,
        "select_p50_ms": p50,
        "select_p99_ms": p99,
        "top1_accuracy": round(hits / queries, 3),
        "publish_to_live_s": round(publish_s, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(args: list[str]) -> dict[str, Any]:
    """Run one side in its own process (own peak RSS) and read its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--questions", type=int, default=2)
    parser.add_argument("--rasa-entries", type=int, default=5000)
    parser.add_argument("--rasa-epochs", type=int, default=100)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--side", choices=["ours", "rasa", "both"], default="both")
    parser.add_argument(
        "--merge",
        nargs=2,
        type=Path,
        metavar=("OURS_JSON", "RASA_JSON"),
        help="combine the JSON lines of earlier --side runs (run side by side) into the results",
    )
    args = parser.parse_args()
    url = (
        os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    if args.side == "ours":
        print(json.dumps(asyncio.run(_ours(url, args.entries, args.questions, args.queries))))
        return
    if args.side == "rasa":
        print(json.dumps(_rasa(args.rasa_entries, args.questions, args.queries, args.rasa_epochs)))
        return
    common = ["--questions", str(args.questions), "--queries", str(args.queries)]
    if args.merge:
        ours, rasa = (json.loads(p.read_text().strip().splitlines()[-1]) for p in args.merge)
    else:
        ours = _child(["--side", "ours", "--entries", str(args.entries), *common])
        rasa = _child(
            ["--side", "rasa", "--rasa-entries", str(args.rasa_entries),
             "--rasa-epochs", str(args.rasa_epochs), *common]
        )  # fmt: skip
    from bench.bins import lookup_benchmark

    ours["lookup_p99_ms"] = round(lookup_benchmark(2000, url)["p99_ms"], 3)
    if rasa["entries"] != ours["entries"]:
        rasa["note"] = f"trained on {rasa['entries']} entries, ours on {ours['entries']}"
    result = {
        "ours": ours,
        "rasa_response_selector": rasa,
        "measured_at": datetime.now(UTC).isoformat(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
