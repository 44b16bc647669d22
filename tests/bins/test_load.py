from __future__ import annotations

from pathlib import Path

import pytest
import redis

from bot.bins.load import load_files, main

from .conftest import DEMO_PATHS


def _snapshot(client: redis.Redis, namespace: str) -> dict[str, str]:
    keys = sorted(client.scan_iter(match=f"{namespace}:*", count=1000))
    return {k: repr(client.dump(k)) for k in keys}


def test_loading_twice_gives_the_same_contents(redis_client: redis.Redis, namespace: str) -> None:
    first = load_files(redis_client, namespace, *DEMO_PATHS)
    before = _snapshot(redis_client, namespace)
    second = load_files(redis_client, namespace, *DEMO_PATHS)
    assert first.loaded == second.loaded == 2128
    assert first.errors == second.errors == []
    assert _snapshot(redis_client, namespace) == before


def test_reload_drops_addresses_no_longer_in_the_file(
    redis_client: redis.Redis, namespace: str, tmp_path: Path
) -> None:
    load_files(redis_client, namespace, *DEMO_PATHS)
    addresses, rounds, holidays = DEMO_PATHS
    smaller = tmp_path / "addresses.csv"
    smaller.write_text("".join(addresses.read_text().splitlines(keepends=True)[:6]))
    result = load_files(redis_client, namespace, smaller, rounds, holidays)
    assert result.loaded == 5
    assert len(list(redis_client.scan_iter(match=f"{namespace}:bins:uprn:*"))) == 5
    assert redis_client.exists(f"{namespace}:bins:pc:AV3 4DT") == 0


def test_cli_reports_bad_rows_and_loads_the_rest(
    redis_url: str,
    redis_client: redis.Redis,
    namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, rounds, holidays = DEMO_PATHS
    addresses = tmp_path / "addresses.csv"
    addresses.write_text(
        "uprn,address,postcode,rounds\n"
        "1,2 Mill Lane,AV1 2BX,MON-FOOD\n"
        "2,4 Mill Lane,AV1 2XX9,MON-FOOD\n"
        "3,6 Mill Lane,AV1 2BX,MON-FOOD\n"
    )
    argv = ["--addresses", str(addresses), "--rounds", str(rounds), "--holidays", str(holidays)]
    status = main([*argv, "--namespace", namespace, "--redis-url", redis_url])
    out, err = capsys.readouterr()
    assert status == 1
    assert f"{addresses}: line 3: postcode" in err
    assert "loaded 2 addresses, rejected 1 rows" in out
    assert redis_client.exists(f"{namespace}:bins:uprn:1", f"{namespace}:bins:uprn:3") == 2


def test_cli_demo(redis_url: str, redis_client: redis.Redis, namespace: str) -> None:
    assert main(["--demo", "--namespace", namespace, "--redis-url", redis_url]) == 0
    assert redis_client.exists(f"{namespace}:bins:pc:AV1 2BX") == 1


def test_cli_needs_files(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--addresses", "a.csv"])
    assert "--demo" in capsys.readouterr().err


def test_reload_keeps_missed_bin_reports(redis_client: redis.Redis, namespace: str) -> None:
    load_files(redis_client, namespace, *DEMO_PATHS)
    report = f"{namespace}:bins:missed:MB-2026-000001"
    redis_client.hset(report, mapping={"uprn": "1"})
    redis_client.set(f"{namespace}:bins:missed:seq:2026", 1)
    load_files(redis_client, namespace, *DEMO_PATHS)
    assert redis_client.hgetall(report) == {"uprn": "1"}
    assert redis_client.get(f"{namespace}:bins:missed:seq:2026") == "1"
