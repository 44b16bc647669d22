"""Residents' photos: only real images, metadata removed, stored privately, shared by an
expiring address, removed when the resident's data is."""

from __future__ import annotations

import io
import json
import stat
from dataclasses import replace
from pathlib import Path

import boto3
import httpx
import pytest
import redis.asyncio
from botocore.response import StreamingBody
from botocore.stub import Stubber
from PIL import ExifTags, Image

import bot.profile
from bot.reports.config import Photos, S3Storage
from bot.reports.media import MediaUrls, new_name
from bot.reports.media_edge import MediaPart
from bot.reports.photos import (
    UNSUBMITTED_SECONDS,
    LocalPhotoStore,
    PhotoIndex,
    PhotoRejectedError,
    S3PhotoStore,
    check_photo,
    photo_store,
)
from bot.residents.rights import Layout, erase, export, find, leftovers
from bot.testing.edge import serving
from bot.web.audit import AuditLog

KEY = "k" * 40
GPS = ExifTags.IFD.GPSInfo


def phone_photo(orientation: int = 1, fmt: str = "JPEG") -> bytes:
    """A photo as a phone takes it: GPS position, camera make, model and serial in EXIF."""
    image = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif[ExifTags.Base.Model] = "PhoneCam 9"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.BodySerialNumber] = "SN-123456"
    gps = exif.get_ifd(GPS)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 10.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (1.0, 28.0, 12.0)
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif)
    return out.getvalue()


def test_the_generated_photo_really_carries_gps_and_camera_data() -> None:
    exif = Image.open(io.BytesIO(phone_photo())).getexif()
    assert exif[ExifTags.Base.Model] == "PhoneCam 9"
    assert exif.get_ifd(GPS)[ExifTags.GPS.GPSLatitudeRef] == "N"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_location_and_camera_data_are_removed(fmt: str) -> None:
    photo = check_photo(phone_photo(fmt=fmt), max_bytes=10**7)
    assert photo.extension == {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
    cleaned = Image.open(io.BytesIO(photo.data))
    assert cleaned.format == fmt
    exif = cleaned.getexif()
    assert not exif.get_ifd(GPS) and ExifTags.Base.Model not in exif and not len(exif)
    assert b"PhoneCam" not in photo.data and b"SN-123456" not in photo.data
    assert cleaned.getpixel((5, 5))[:3] == pytest.approx((200, 30, 30), abs=8)


def test_the_photo_stays_upright_once_its_orientation_tag_is_gone() -> None:
    photo = check_photo(phone_photo(orientation=6), max_bytes=10**7)  # "rotate 90 degrees"
    assert (photo.width, photo.height) == (20, 40)


def test_a_council_that_opts_in_keeps_the_location() -> None:
    original = phone_photo()
    photo = check_photo(original, max_bytes=10**7, keep_location=True)
    assert photo.data == original
    assert Image.open(io.BytesIO(photo.data)).getexif().get_ifd(GPS)


def test_a_40_mb_photo_is_refused_before_decoding() -> None:
    with pytest.raises(PhotoRejectedError) as refused:
        check_photo(b"\xff\xd8\xff" + bytes(40_000_000), max_bytes=10_000_000)
    assert refused.value.reason == "too_large"


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj",  # a document
        b"just some words",
        phone_photo()[:300],  # a photo cut off in transit
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",  # an animation, not a photo
    ],
)
def test_what_is_not_a_photo_is_refused(data: bytes) -> None:
    with pytest.raises(PhotoRejectedError) as refused:
        check_photo(data, max_bytes=10**7)
    assert refused.value.reason == "not_image"


def test_a_decompression_bomb_is_refused() -> None:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")  # 100 megapixels in a few KB
    with pytest.raises(PhotoRejectedError, match="not_image"):
        check_photo(out.getvalue(), max_bytes=10**7)


def test_signed_addresses_expire_and_cannot_be_forged() -> None:
    now = [1_000_000.0]
    urls = MediaUrls(KEY, "https://chat.example.gov.uk/", 3600, clock=lambda: now[0])
    name = new_name("jpg")
    url = urls.url(name)
    assert url.startswith("https://chat.example.gov.uk/media/") and name in url
    token = url.rpartition("/")[2]
    assert urls.verify(token) == name
    assert MediaUrls("z" * 40, clock=lambda: now[0]).verify(token) is None  # another key
    other = new_name("jpg")
    assert urls.verify(token.replace(name, other)) is None  # a token names one photo only
    expires = token.split(".")[2]
    assert urls.verify(token.replace(f".{expires}.", f".{int(expires) + 99}.")) is None
    assert urls.verify("../../etc/passwd") is None
    now[0] += 3601
    assert urls.verify(token) is None
    with pytest.raises(ValueError):
        MediaUrls("short")


async def test_local_store_keeps_photos_owner_only(tmp_path: Path) -> None:
    store = photo_store(Photos(folder="media"), tmp_path)
    assert isinstance(store, LocalPhotoStore) and store.folder == tmp_path / "media"
    name = new_name("jpg")
    await store.put(name, b"jpeg bytes", "image/jpeg")
    stored = await store.get(name)
    assert stored is not None and (stored.data, stored.content_type) == (
        b"jpeg bytes",
        "image/jpeg",
    )
    assert stat.S_IMODE((tmp_path / "media" / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "media").stat().st_mode) == 0o700
    await store.delete(name)
    assert await store.get(name) is None
    await store.delete(name)  # already gone: no error
    with pytest.raises(ValueError):
        await store.get("../secrets.jpg")


async def test_s3_store_calls_the_bucket_api() -> None:
    """Through botocore's Stubber: the requests boto3 would make are checked (parameter names
    and types against the S3 service model), not sent; a real bucket is not exercised."""
    store = photo_store(
        Photos(
            storage="s3", s3=S3Storage("council-photos", "https://s3.example.test", "eu-west-2")
        ),
        Path("/unused"),
    )
    assert isinstance(store, S3PhotoStore)
    name = new_name("png")
    path = f"report-photos/{name}"
    with Stubber(store.client) as stub:
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "council-photos",
                "Key": path,
                "Body": b"png bytes",
                "ContentType": "image/png",
                "ServerSideEncryption": "AES256",
            },
        )
        body = StreamingBody(io.BytesIO(b"png bytes"), len(b"png bytes"))
        stub.add_response(
            "get_object",
            {"Body": body, "ContentType": "image/png"},
            {"Bucket": "council-photos", "Key": path},
        )
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
        stub.add_response("delete_object", {}, {"Bucket": "council-photos", "Key": path})
        await store.put(name, b"png bytes", "image/png")
        stored = await store.get(name)
        assert stored is not None and stored.data == b"png bytes"
        assert await store.get(name) is None
        await store.delete(name)
        stub.assert_no_pending_responses()
    assert boto3  # the real SDK builds the client


async def test_index_finds_a_residents_photos_and_sweeps_the_old_and_abandoned(
    async_redis: redis.asyncio.Redis, namespace: str, tmp_path: Path
) -> None:
    store = LocalPhotoStore(tmp_path)
    index = PhotoIndex(async_redis, namespace)
    resident, other = "telegram:councilbot:111", "telegram:councilbot:222"
    now = 2_000_000_000.0
    names = {}
    for label, who, age in [
        ("abandoned", resident, UNSUBMITTED_SECONDS + 60),
        ("submitted", resident, UNSUBMITTED_SECONDS + 60),
        ("fresh", resident, 60),
        ("ancient", other, 400 * 86_400),
    ]:
        names[label] = new_name("jpg")
        await store.put(names[label], label.encode(), "image/jpeg")
        await index.record(who, names[label], now - age)
    await index.mark_submitted(names["submitted"])
    await index.mark_submitted(names["ancient"])

    held = {p["name"]: p for p in await index.of(resident)}
    assert set(held) == {names["abandoned"], names["submitted"], names["fresh"]}
    assert held[names["submitted"]]["submitted"] == "1"

    assert await index.sweep(store, now, retention_days=365) == 2  # abandoned and ancient
    assert await store.get(names["abandoned"]) is None and await store.get(names["ancient"]) is None
    assert await store.get(names["submitted"]) is not None
    assert {p["name"] for p in await index.of(resident)} == {names["submitted"], names["fresh"]}

    assert await index.erase(resident, store) == 2
    assert await index.of(resident) == [] and list(tmp_path.iterdir()) == []


async def test_the_edge_serves_a_photo_only_by_a_valid_unexpired_token(
    async_redis: redis.asyncio.Redis, namespace: str, tmp_path: Path
) -> None:
    now = [1_000_000.0]
    urls = MediaUrls(KEY, "", 3600, clock=lambda: now[0])
    store = LocalPhotoStore(tmp_path)
    photo = check_photo(phone_photo(), max_bytes=10**7)
    name = new_name(photo.extension)
    await store.put(name, photo.data, photo.content_type)
    async with (
        serving([], async_redis, namespace, parts=[MediaPart(urls, store)]) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        token = urls.token(name)
        answer = await client.get(f"/media/{token}")
        assert answer.status_code == 200 and answer.content == photo.data
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["content-security-policy"] == "default-src 'none'"
        assert answer.headers["x-content-type-options"] == "nosniff"
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        missing = urls.token(new_name("jpg"))
        for bad in (forged, missing, "nonsense", name):
            assert (await client.get(f"/media/{bad}")).status_code == 404
        now[0] += 3601
        assert (await client.get(f"/media/{token}")).status_code == 404


async def test_a_residents_photos_are_exported_by_name_and_erased_with_them(
    async_redis: redis.asyncio.Redis, namespace: str, tmp_path: Path
) -> None:
    council = bot.profile.current()
    assert council.reports is not None
    here = replace(council.reports.photos, folder=str(tmp_path))
    previous = bot.profile.use(replace(council, reports=replace(council.reports, photos=here)))
    try:
        layout = Layout(namespace, f"{namespace}:tracker:", f"{namespace}:lock:")
        priya, tom = "telegram:councilbot:111", "telegram:councilbot:222"
        store, index = LocalPhotoStore(tmp_path), PhotoIndex(async_redis, namespace)
        names = {}
        for who in (priya, tom):
            await async_redis.set(layout.tracker_prefix + who, json.dumps({"events": []}))
            names[who] = new_name("jpg")
            await store.put(names[who], b"photo", "image/jpeg")
            await index.record(who, names[who])
        found = await find(async_redis, layout, priya)
        [held] = (await export(async_redis, layout, found))["conversations"]
        assert [p["name"] for p in held["problem_report_photos"]] == [names[priya]]
        await erase(async_redis, layout, found, AuditLog(async_redis, namespace))
        assert await store.get(names[priya]) is None and await index.of(priya) == []
        assert await store.get(names[tom]) is not None  # someone else's stays
        assert await leftovers(async_redis, layout, found) == []
    finally:
        bot.profile.use(previous)
