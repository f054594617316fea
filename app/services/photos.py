"""Product photos: checked by content, re-encoded, stored under generated names, reordered.

An upload is never kept as sent. Its first bytes must say JPEG, PNG or WebP; Pillow reads only
the header before the pixel count is checked (a 20,000 x 20,000 PNG is a few kilobytes that
would decode to 1.6 GB); then the pixels are decoded, turned upright from the EXIF orientation,
flattened onto white and saved afresh as JPEG in a few sizes. Nothing of the original file, its
name, type or metadata (GPS position, camera) survives, so what is served can only be a JPEG.

Files are written before the database rows that name them. Each session remembers the files
its transaction wrote and removes them when the transaction ends without a commit, and removes
a deleted photo's files only once the deletion is committed: a refused or failed upload leaves no
files behind, and a rolled-back deletion loses none.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageCms, ImageOps
from sqlalchemy.orm import Session

from app.models import Product, ProductPhoto, Role
from app.services.accounts import Actor
from app.services.errors import DomainError, LineErrors, NotFound
from app.signals import note_catalog_change

log = logging.getLogger(__name__)

#: Stored renditions and the longest edge of each, in pixels; never enlarged.
SIZES = {"large": 1200, "medium": 480, "thumb": 160}
KEY_PATTERN = re.compile(r"[0-9a-f]{32}")
JPEG_QUALITY = 85

_JPEG, _PNG, _WEBP = "JPEG", "PNG", "WEBP"


@dataclass(frozen=True)
class PhotoStore:
    """Where photos go and how large they may be (PHOTO_* in config.py)."""

    directory: Path
    max_bytes: int
    max_pixels: int
    per_product: int

    @classmethod
    def from_config(cls, config) -> PhotoStore:
        return cls(
            directory=Path(config["PHOTO_DIR"]),
            max_bytes=config["PHOTO_MAX_BYTES"],
            max_pixels=config["PHOTO_MAX_PIXELS"],
            per_product=config["PHOTOS_PER_PRODUCT"],
        )

    def path(self, key: str, size: str) -> Path:
        """A rendition's file; the key's first two characters spread files over 256 folders."""
        if not KEY_PATTERN.fullmatch(key) or size not in SIZES:
            raise ValueError(f"not a photo file: {key!r} {size!r}")
        return self.directory / key[:2] / f"{key}-{size}.jpg"


@dataclass(frozen=True)
class Upload:
    """One file as sent: the name is only for messages, the stream is read once."""

    filename: str
    stream: IO[bytes]

    @property
    def label(self) -> str:
        # Some browsers send a whole path ("C:\fakepath\x.jpg"); the last part says enough.
        name = (self.filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
        return name[:80] or str(_l("(unnamed file)"))


@dataclass(frozen=True)
class Prepared:
    """A photo re-encoded in every size, ready to be written."""

    renditions: dict[str, bytes]
    width: int
    height: int


def fit(width: int, height: int, edge: int) -> tuple[int, int]:
    """The size of a width x height picture shrunk to fit an edge x edge box (never enlarged)."""
    longest = max(width, height)
    if longest <= edge:
        return width, height
    return max(1, round(width * edge / longest)), max(1, round(height * edge / longest))


def rendition_size(photo: ProductPhoto, size: str) -> tuple[int, int]:
    """Pixel size of one stored rendition, for an img tag's width and height."""
    # Smaller sizes are made from the large one with fit(), so this is exact.
    return fit(photo.width, photo.height, SIZES[size])


# --- checking and re-encoding -------------------------------------------------------------------


def read_limited(stream: IO[bytes], max_bytes: int) -> bytes:
    """The whole upload, refused once it passes max_bytes (whatever Content-Length claimed)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DomainError(
            _l(
                "The file is larger than %(mb)s MB. Send a smaller photo (a phone's normal "
                "camera setting is fine).",
                mb=megabytes(max_bytes),
            )
        )
    if not data:
        raise DomainError(_l("The file is empty."))
    return data


def megabytes(count: int) -> str:
    """A byte count as people read a file size: 10485760 -> "10", 2621440 -> "2.5"."""
    return f"{count / (1024 * 1024):.3g}"


def sniff(data: bytes) -> str:
    """The format the file's first bytes declare; anything but JPEG, PNG and WebP is refused."""
    if data.startswith(b"\xff\xd8\xff"):
        return _JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _PNG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _WEBP
    if data[:6] in (b"GIF87a", b"GIF89a"):
        raise DomainError(_l("GIF files are not accepted. Save the photo as JPEG or PNG."))
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        raise DomainError(
            _l(
                "HEIC photos are not accepted. Export the photo as JPEG, or set the phone's "
                "camera to the most compatible format."
            )
        )
    raise DomainError(_l("This is not a JPEG, PNG or WebP photo."))


def prepare(data: bytes, max_pixels: int) -> Prepared:
    """Check one upload and re-encode it; raises DomainError saying why it is refused."""
    declared = sniff(data)
    try:
        # Image.open reads the header only: the size is known before any pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=[declared])
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except Exception:
        # Pillow's decoders raise many kinds of errors on broken files; all mean the same.
        log.info("photo refused: header unreadable", exc_info=True)
        raise DomainError(_l("The file is damaged or is not really a photo.")) from None
    try:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(max_pixels)
        return _reencode(image)
    except DomainError:
        raise
    except Exception:
        log.info("photo refused: pixels unreadable", exc_info=True)
        raise DomainError(_l("The file is damaged or is not really a photo.")) from None
    finally:
        image.close()


def _too_many_pixels(max_pixels: int) -> DomainError:
    return DomainError(
        _l(
            "The picture has too many pixels (at most %(mp)s megapixels). Send a smaller photo.",
            mp=f"{max_pixels / 1_000_000:g}",
        )
    )


def _reencode(image: Image.Image) -> Prepared:
    large_edge = SIZES["large"]
    if image.format == _JPEG:
        # Decode at a reduced scale when the photo is much larger than we keep: less memory.
        image.draft("RGB", (large_edge, large_edge))
    image.load()  # truncated or corrupt data fails here, not half-way through saving
    upright = ImageOps.exif_transpose(image)
    flat = _flatten(_to_srgb(upright))
    large = flat.resize(fit(*flat.size, large_edge), Image.Resampling.LANCZOS)
    renditions = {}
    for size, edge in SIZES.items():
        picture = (
            large
            if edge >= large_edge
            else large.resize(fit(*large.size, edge), Image.Resampling.LANCZOS)
        )
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
        renditions[size] = buffer.getvalue()
    return Prepared(renditions, *large.size)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Colours as browsers show them: phones often tag photos with a wider colour space, and
    the profile itself is dropped with the rest of the metadata."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        return ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            ImageCms.createProfile("sRGB"),
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unusable profile: the colours as stored are close enough


def _flatten(image: Image.Image) -> Image.Image:
    """A new RGB picture with the pixels only (no metadata), transparency shown as white."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        # 16-bit grey (some scanners' PNGs): scaled to 8 bits, not clipped to white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    canvas = Image.new("RGB", image.size, "white")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
    else:
        canvas.paste(image.convert("RGB"))
    return canvas


# --- files --------------------------------------------------------------------------------------

#: session.info keys: files this transaction wrote (removed unless it commits), and files of
#: photos it deleted (removed once it commits).
_WRITTEN = "photos.written"
_DOOMED = "photos.doomed"


def _new_key(store: PhotoStore) -> str:
    while True:
        key = secrets.token_hex(16)
        # 128 random bits do not collide; never overwriting another photo's files is still cheap.
        if not any(store.path(key, size).exists() for size in SIZES):
            return key


def _write(store: PhotoStore, key: str, prepared: Prepared) -> list[Path]:
    """Write every rendition, each under a temporary name then renamed, so a reader never sees
    half a file; on failure, remove what was written."""
    written: list[Path] = []
    try:
        for size, data in prepared.renditions.items():
            final = store.path(key, size)
            final.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=final.parent, prefix=".upload-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.chmod(temporary, 0o644)
                os.replace(temporary, final)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            written.append(final)
    except BaseException:
        _unlink(written)
        raise
    return written


def _unlink(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            # After a commit there is nobody to tell; an orphan file harms nothing.
            log.warning("could not remove photo file %s", path, exc_info=True)


def files_of(store: PhotoStore, key: str) -> list[Path]:
    return [store.path(key, size) for size in SIZES]


@sa.event.listens_for(Session, "after_commit")
def _settle_files(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer transaction decides
    session.info.pop(_WRITTEN, None)
    _unlink(session.info.pop(_DOOMED, ()))


@sa.event.listens_for(Session, "after_transaction_end")
def _remove_uncommitted_files(session: Session, transaction) -> None:
    # Fires after _settle_files on a commit (nothing is left to remove then), and alone on a
    # rollback or when the session is closed with its transaction open.
    if transaction.parent is not None:
        return
    _unlink(session.info.pop(_WRITTEN, ()))
    session.info.pop(_DOOMED, None)


# --- the supplier's photos ----------------------------------------------------------------------


def get_own_product(session: Session, actor: Actor, product_id: int) -> Product:
    """The actor's supplier's product; any other is 'not found', so ids are not confirmed."""
    product = session.get(Product, product_id)
    if (
        product is None
        or not actor.has_role(Role.SUPPLIER)
        or product.supplier_id != actor.organization_id
    ):
        raise NotFound(_l("There is no such product among your listings."))
    return product


def get_own_photo(session: Session, actor: Actor, product_id: int, photo_id: int) -> ProductPhoto:
    product = get_own_product(session, actor, product_id)
    photo = session.get(ProductPhoto, photo_id)
    if photo is None or photo.product_id != product.id:
        raise NotFound(_l("This photo does not exist, or was removed."))
    return photo


def _lock_photos(session: Session, product: Product) -> list[ProductPhoto]:
    """The product's photos as committed, with the product row locked until the commit, so two
    requests changing the same product's photos queue (SQLite's write lock does the same)."""
    session.execute(sa.select(Product.id).where(Product.id == product.id).with_for_update())
    session.refresh(product, ["photos"])
    return list(product.photos)


def _arrange(session: Session, product: Product, photos: Sequence[ProductPhoto], now) -> None:
    for position, photo in enumerate(photos):
        photo.position = position
    product.photos = list(photos)
    product.updated_at = now
    session.flush()
    note_catalog_change(session)


def add_photos(
    session: Session,
    product: Product,
    actor: Actor,
    now: datetime,
    uploads: Sequence[Upload],
    store: PhotoStore,
) -> list[ProductPhoto]:
    """Add the uploads after the product's photos: all of them, or none.

    Every file is checked, and a LineErrors names each refused one by its number in `uploads`.
    """
    if not uploads:
        raise DomainError(_l("Choose one or more photos."), field="photos")
    if len(uploads) > store.per_product:
        raise _too_many(store, len(product.photos))
    prepared: dict[int, Prepared] = {}
    errors: dict[int, Any] = {}
    # The slow part, before the product is locked: it must not hold up buyers' checkouts.
    for number, upload in enumerate(uploads):
        try:
            prepared[number] = prepare(
                read_limited(upload.stream, store.max_bytes), store.max_pixels
            )
        except DomainError as error:
            errors[number] = error.message
    if errors:
        raise LineErrors(
            errors,
            _l("No photo was added. Remove or replace the files named below and send again."),
        )

    photos = _lock_photos(session, product)
    if len(photos) + len(uploads) > store.per_product:
        raise _too_many(store, len(photos))
    added = []
    for number in range(len(uploads)):
        key = _new_key(store)
        ready = prepared[number]
        # Remembered before the flush: from here on, a rollback must take the files away too.
        session.info.setdefault(_WRITTEN, []).extend(_write(store, key, ready))
        added.append(
            ProductPhoto(
                key=key,
                width=ready.width,
                height=ready.height,
                uploaded_by_id=actor.id,
                created_at=now,
            )
        )
    _arrange(session, product, [*photos, *added], now)
    return added


def _too_many(store: PhotoStore, count: int) -> DomainError:
    return DomainError(
        _l(
            "A product can have at most %(max)d photos; this one has %(count)d, so you can add "
            "%(left)d more.",
            max=store.per_product,
            count=count,
            left=max(0, store.per_product - count),
        ),
        field="photos",
    )


def _current(photos: list[ProductPhoto], photo: ProductPhoto) -> int:
    if photo not in photos:
        raise NotFound(_l("This photo does not exist, or was removed."))
    return photos.index(photo)


def make_main(session: Session, photo: ProductPhoto, actor: Actor, now: datetime) -> None:
    """Put the photo first; the others keep their order."""
    product = photo.product
    photos = _lock_photos(session, product)
    photos.pop(_current(photos, photo))
    _arrange(session, product, [photo, *photos], now)


def move(
    session: Session, photo: ProductPhoto, actor: Actor, now: datetime, direction: str
) -> None:
    """Swap the photo with its neighbour: "up" towards the main photo, "down" away from it."""
    if direction not in ("up", "down"):
        raise DomainError(_l("Choose whether to move the photo earlier or later."))
    product = photo.product
    photos = _lock_photos(session, product)
    index = _current(photos, photo)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(photos):
        raise DomainError(
            _l("This photo is already the first.")
            if direction == "up"
            else _l("This photo is already the last.")
        )
    photos[index], photos[other] = photos[other], photos[index]
    _arrange(session, product, photos, now)


def remove(
    session: Session, photo: ProductPhoto, actor: Actor, now: datetime, store: PhotoStore
) -> None:
    """Delete the photo; its files go once the deletion is committed."""
    product = photo.product
    photos = _lock_photos(session, product)
    photos.pop(_current(photos, photo))
    session.info.setdefault(_DOOMED, []).extend(files_of(store, photo.key))
    _arrange(session, product, photos, now)
