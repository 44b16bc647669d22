"""Residents' photos for problem reports: checked, cleaned, stored, indexed, removed.

:func:`check_photo` accepts a JPEG, PNG or WebP that Pillow decodes, no bigger than the
profile's ``reports.photos.max_bytes`` and no bigger than :data:`MAX_PIXELS`; unless the council
keeps them (``photos.keep_location``), the EXIF data (GPS position, camera make, model and
serial, times) and any text chunks are removed by re-encoding the pixels (the orientation is
applied first, so the photo still looks right). Anything else is a
:class:`PhotoRejectedError` whose ``reason`` picks the resident's message.

Photos are stored under a random name (:func:`bot.reports.media.new_name`) in a
:class:`PhotoStore`: a local folder (default) or an S3-compatible bucket. The
:class:`PhotoIndex` in Redis remembers whose conversation each photo came from and when, so
residents' export and erasure (:mod:`bot.residents.rights`) and the retention sweep find them;
a photo of a report never submitted (form abandoned or cancelled) is removed after
:data:`UNSUBMITTED_SECONDS`.

Key layout (namespace ``ns``): ``{ns}:reports:photo:<name>`` hash (``conversation_id``,
``created_at``, ``submitted``), ``{ns}:reports:photos:of:<conversation id>`` set of names,
``{ns}:reports:photos`` sorted set name -> created (Unix seconds).
"""

from __future__ import annotations

import abc
import asyncio
import io
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.errors import CouncilError
from bot.keys import key
from bot.reports.config import Photos

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "UNSUBMITTED_SECONDS",
    "CheckedPhoto",
    "LocalPhotoStore",
    "PhotoIndex",
    "PhotoRejectedError",
    "PhotoStore",
    "S3PhotoStore",
    "StoredPhoto",
    "check_photo",
    "photo_store",
]

FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}
"""Pillow format -> (file extension, MIME type) of the photos accepted."""
MAX_PIXELS = 50_000_000
"""More pixels than this is refused (a decompression bomb, not a phone photo)."""
UNSUBMITTED_SECONDS = 24 * 3600
"""A photo whose report was never submitted is removed this long after it arrived."""
_CONTENT_TYPES = {mime: ext for ext, mime in FORMATS.values()}


class PhotoRejectedError(CouncilError):
    """A file a resident sent is not a photo we accept.

    Args:
        reason: ``too_large`` | ``not_image``.
        detail: What exactly (for logs; no personal data).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"photo refused: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo ready to store: its bytes (cleaned unless kept), extension and MIME type."""

    data: bytes = field(repr=False)
    extension: str
    content_type: str
    width: int
    height: int


def check_photo(data: bytes, *, max_bytes: int, keep_location: bool = False) -> CheckedPhoto:
    """Check a photo and, unless ``keep_location``, remove its metadata.

    Raises:
        PhotoRejectedError: Too big (``too_large``), or not a decodable JPEG/PNG/WebP
            (``not_image``).
    """
    if len(data) > max_bytes:
        raise PhotoRejectedError("too_large", f"{len(data)} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                found = probe.format or ""
                if found not in FORMATS:
                    raise PhotoRejectedError("not_image", f"format {found or 'unknown'}")
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRejectedError("not_image", "too many pixels")
                probe.verify()  # the whole file, not just its header
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                extension, content_type = FORMATS[found]
                if keep_location:
                    return CheckedPhoto(data, extension, content_type, image.width, image.height)
                return _cleaned(image, found, extension, content_type)
    except PhotoRejectedError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:  # fmt: skip
        raise PhotoRejectedError("not_image", type(exc).__name__) from None


def _cleaned(image: Image.Image, found: str, extension: str, content_type: str) -> CheckedPhoto:
    upright = ImageOps.exif_transpose(image)  # applies the orientation tag
    if upright.mode not in {"RGB", "RGBA", "L", "LA"}:
        upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
    if found == "JPEG" and upright.mode not in {"RGB", "L"}:
        upright = upright.convert("RGB")
    # a new image from the pixels alone: no EXIF, XMP, ICC, text chunks or comments carried over
    pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 90} if found in {"JPEG", "WEBP"} else {}
    pixels.save(out, format=found, **options)
    return CheckedPhoto(out.getvalue(), extension, content_type, pixels.width, pixels.height)


@dataclass(frozen=True)
class StoredPhoto:
    """A stored photo's bytes and MIME type."""

    data: bytes = field(repr=False)
    content_type: str


class PhotoStore(abc.ABC):
    """Where photos are kept, by name."""

    @abc.abstractmethod
    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store a photo."""

    @abc.abstractmethod
    async def get(self, name: str) -> StoredPhoto | None:
        """A stored photo, or None."""

    @abc.abstractmethod
    async def delete(self, name: str) -> None:
        """Remove a photo (no error when it is already gone)."""


class LocalPhotoStore(PhotoStore):
    """A folder (owner-only permissions) on the server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError("not a photo name")
        return self.folder / name

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Write the file (owner-only), atomically."""
        path = self._path(name)

        def write() -> None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_name(f".{name}.part")
            partial.touch(mode=0o600)
            partial.write_bytes(data)
            partial.replace(path)

        await asyncio.to_thread(write)

    async def get(self, name: str) -> StoredPhoto | None:
        """Read the file, or None."""
        path = self._path(name)
        extension = name.rpartition(".")[2]
        mime = next((m for m, e in _CONTENT_TYPES.items() if e == extension), "")
        try:
            return StoredPhoto(await asyncio.to_thread(path.read_bytes), mime)
        except FileNotFoundError:
            return None

    async def delete(self, name: str) -> None:
        """Remove the file."""
        await asyncio.to_thread(self._path(name).unlink, missing_ok=True)


class S3PhotoStore(PhotoStore):
    """An S3-compatible bucket (credentials from the usual ``AWS_*`` variables or the role).

    Args:
        client: A boto3 S3 client (``photo_store`` builds one from the profile).
        bucket: The bucket's name.
        prefix: Key prefix of the photos.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "report-photos/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """PUT the object (server-side encryption asked for)."""
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self.prefix + name,
            Body=data,
            ContentType=content_type,
            ServerSideEncryption="AES256",
        )

    async def get(self, name: str) -> StoredPhoto | None:
        """GET the object, or None when there is no such key."""

        def read() -> StoredPhoto | None:
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            except self.client.exceptions.NoSuchKey:
                return None
            return StoredPhoto(answer["Body"].read(), str(answer.get("ContentType", "")))

        return await asyncio.to_thread(read)

    async def delete(self, name: str) -> None:
        """DELETE the object."""
        await asyncio.to_thread(
            self.client.delete_object, Bucket=self.bucket, Key=self.prefix + name
        )


def photo_store(photos: Photos, root: Path) -> PhotoStore:
    """The store the profile's ``reports.photos`` names (a relative folder is under ``root``)."""
    if photos.storage == "s3" and photos.s3 is not None:
        import boto3  # only councils storing in a bucket load it

        options = {
            name: value
            for name, value in (
                ("endpoint_url", photos.s3.endpoint_url),
                ("region_name", photos.s3.region),
            )
            if value
        }
        return S3PhotoStore(boto3.client("s3", **options), photos.s3.bucket)
    folder = Path(photos.folder)
    return LocalPhotoStore(folder if folder.is_absolute() else root / folder)


class PhotoIndex:
    """Whose photo is whose, and since when (Redis; layout in the module docstring)."""

    def __init__(self, client: redis.asyncio.Redis, namespace: str = "cr") -> None:
        self.client = client
        self.namespace = namespace

    def _photo(self, name: str) -> str:
        return key(self.namespace, "reports", "photo", name)

    def _of(self, conversation_id: str) -> str:
        return key(self.namespace, "reports", "photos", "of", conversation_id)

    def _all(self) -> str:
        return key(self.namespace, "reports", "photos")

    async def record(self, conversation_id: str, name: str, now: float | None = None) -> None:
        """Remember a stored photo of ``conversation_id``."""
        at = time.time() if now is None else now
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._photo(name),
                mapping={"conversation_id": conversation_id, "created_at": at, "submitted": 0},
            )
            pipe.sadd(self._of(conversation_id), name)
            pipe.zadd(self._all(), {name: at})
            await pipe.execute()

    async def mark_submitted(self, name: str) -> None:
        """The photo belongs to a submitted report: kept for the retention period."""
        await self.client.hset(self._photo(name), "submitted", 1)

    async def of(self, conversation_id: str) -> list[dict[str, str]]:
        """The photos of a conversation: ``name``, ``created_at``, ``submitted``."""
        names = sorted(await self.client.smembers(self._of(conversation_id)))
        found = []
        for name in names:
            fields = await self.client.hgetall(self._photo(name))
            found.append({"name": str(name), **{str(k): str(v) for k, v in fields.items()}})
        return found

    async def remove(self, names: list[str], store: PhotoStore) -> int:
        """Delete photos from the store and the index; return how many."""
        for name in names:
            await store.delete(name)
            owner = await self.client.hget(self._photo(name), "conversation_id")
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(self._photo(name))
                pipe.zrem(self._all(), name)
                if owner:
                    pipe.srem(self._of(str(owner)), name)
                await pipe.execute()
        return len(names)

    async def erase(self, conversation_id: str, store: PhotoStore) -> int:
        """Delete every photo of a conversation (residents' erasure)."""
        names = [str(n) for n in await self.client.smembers(self._of(conversation_id))]
        removed = await self.remove(names, store)
        await self.client.delete(self._of(conversation_id))
        return removed

    async def sweep(self, store: PhotoStore, now: float, retention_days: int) -> int:
        """Delete photos past the retention period, and unsubmitted ones after a day."""
        oldest = await self.client.zrangebyscore(self._all(), "-inf", now - UNSUBMITTED_SECONDS)
        stale = []
        for name in map(str, oldest):
            fields = await self.client.hmget(self._photo(name), ["created_at", "submitted"])
            created = float(fields[0] or 0)
            if fields[1] != "1" or created < now - retention_days * 86_400:
                stale.append(name)
        return await self.remove(stale, store)
