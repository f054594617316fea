"""Product photos: what is refused, what is stored, and that files follow the transaction.

The files here are real: images made with Pillow, then broken the way uploads break.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from app.models import ProductPhoto, Role
from app.services import photos
from app.services.clock import utcnow
from app.services.errors import DomainError, LineErrors, NotFound
from app.signals import catalog_changed

# --- real files, good and bad (the view tests use them too) -------------------------------------


def jpeg_file(width=640, height=480, color="steelblue", exif=None) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", exif=exif or Image.Exif())
    return buffer.getvalue()


def png_file(width=64, height=48, mode="RGB", color="seagreen") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def webp_file(width=300, height=200) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, "WEBP")
    return buffer.getvalue()


def gif_file() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(buffer, "GIF")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A real small PNG whose header says width x height, with a correct CRC: only the pixel
    data is too short, so a reader that trusts the header would allocate first."""
    data = bytearray(png_file(10, 10))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def phone_photo() -> bytes:
    """A 400 x 200 JPEG, red on the left and blue on the right, with EXIF orientation 6 (the
    camera was turned: show it rotated 90 degrees clockwise) and a GPS position."""
    image = Image.new("RGB", (400, 200), "blue")
    image.paste((255, 0, 0), (0, 0, 200, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (29.0, 59.0, 7.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (122.0, 12.0, 27.0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=95)
    return buffer.getvalue()


SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"

NOT_A_PHOTO = "This is not a JPEG, PNG or WebP photo."
DAMAGED = "The file is damaged or is not really a photo."
TOO_MANY_PIXELS = "The picture has too many pixels"

#: (file name, content, the start of the message that refuses it)
BAD_FILES = [
    ("notes.jpg", b"just some text, saved with a .jpg name\n" * 20, NOT_A_PHOTO),
    ("half.jpg", jpeg_file(800, 600, "purple")[:1500], DAMAGED),
    ("drawing.svg", SVG, NOT_A_PHOTO),
    ("page.png", HTML, NOT_A_PHOTO),
    ("animation.gif", gif_file(), "GIF files are not accepted"),
    ("bomb.png", png_claiming(20_000, 20_000), TOO_MANY_PIXELS),
    # Below Pillow's own bomb limit, above ours: our check, before decoding, refuses it.
    ("huge.png", png_claiming(7_000, 7_000), TOO_MANY_PIXELS),
    ("empty.jpg", b"", "The file is empty."),
]


def open_stored(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> photos.PhotoStore:
    return photos.PhotoStore(
        directory=tmp_path / "photos",
        max_bytes=2 * 1024 * 1024,
        max_pixels=40_000_000,
        per_product=4,
    )


@pytest.fixture
def seller(make):
    return make.user(roles={Role.SUPPLIER}, organization=make.supplier())


@pytest.fixture
def product(make, seller):
    return make.product(supplier=seller.organization)


def stored_files(store: photos.PhotoStore) -> list[Path]:
    return sorted(path for path in store.directory.rglob("*") if path.is_file())


def upload(session, product, seller, store, *files):
    return photos.add_photos(
        session,
        product,
        seller,
        utcnow(),
        [photos.Upload(name, io.BytesIO(data)) for name, data in files],
        store,
    )


# --- checking one file --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_files_that_are_not_acceptable_photos_are_refused_with_a_reason(name, data, message):
    with pytest.raises(DomainError) as refused:
        photos.prepare(photos.read_limited(io.BytesIO(data), 10**7), 40_000_000)
    assert str(refused.value.message).startswith(message)


def test_a_file_larger_than_the_limit_is_refused_after_reading_only_one_byte_more():
    stream = io.BytesIO(b"\xff\xd8\xff" + b"\0" * 5000)
    with pytest.raises(DomainError, match="larger than"):
        photos.read_limited(stream, 1000)
    assert stream.tell() == 1001


def test_the_pixel_limit_applies_to_real_photos_too():
    with pytest.raises(DomainError, match="too many pixels"):
        photos.prepare(jpeg_file(200, 100), max_pixels=19_999)
    assert photos.prepare(jpeg_file(200, 100), max_pixels=20_000).width == 200


def test_a_phone_photo_is_turned_upright_and_keeps_no_exif_or_gps():
    prepared = photos.prepare(phone_photo(), 40_000_000)

    assert (prepared.width, prepared.height) == (200, 400)
    for data in prepared.renditions.values():
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert "exif" not in image.info and "icc_profile" not in image.info
        assert b"Exif" not in data and b"PhoneMaker" not in data
    large = Image.open(io.BytesIO(prepared.renditions["large"])).convert("RGB")
    # Turned clockwise: what was the left (red) is now the top.
    top, bottom = large.getpixel((100, 50)), large.getpixel((100, 350))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_transparency_becomes_white_and_colours_stay():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 50, 100))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")

    prepared = photos.prepare(buffer.getvalue(), 40_000_000)

    stored = Image.open(io.BytesIO(prepared.renditions["large"]))
    assert stored.format == "JPEG" and stored.mode == "RGB"
    assert all(channel > 245 for channel in stored.getpixel((80, 50)))
    red = stored.getpixel((20, 50))
    assert red[0] > 180 and red[1] < 40 and red[2] < 40


def test_a_16_bit_grey_png_keeps_its_grey():
    buffer = io.BytesIO()
    Image.new("I;16", (40, 30), 32_768).save(buffer, "PNG")
    prepared = photos.prepare(buffer.getvalue(), 40_000_000)
    grey = Image.open(io.BytesIO(prepared.renditions["large"])).getpixel((20, 15))
    assert all(120 <= channel <= 136 for channel in grey)


def test_webp_is_accepted_and_stored_as_jpeg():
    prepared = photos.prepare(webp_file(300, 200), 40_000_000)
    for data in prepared.renditions.values():
        assert Image.open(io.BytesIO(data)).format == "JPEG"
    assert (prepared.width, prepared.height) == (300, 200)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((3000, 2000), {"large": (1200, 800), "medium": (480, 320), "thumb": (160, 107)}),
        ((1000, 3000), {"large": (400, 1200), "medium": (160, 480), "thumb": (53, 160)}),
        # Small photos are never enlarged.
        ((300, 200), {"large": (300, 200), "medium": (300, 200), "thumb": (160, 107)}),
    ],
)
def test_each_size_fits_its_box_without_enlarging(size, expected):
    prepared = photos.prepare(jpeg_file(*size), 40_000_000)
    stored = {name: Image.open(io.BytesIO(data)).size for name, data in prepared.renditions.items()}
    assert stored == expected
    photo = ProductPhoto(width=prepared.width, height=prepared.height)
    assert {name: photos.rendition_size(photo, name) for name in photos.SIZES} == expected


# --- adding photos to a product -----------------------------------------------------------------


def test_uploaded_photos_are_stored_in_every_size_after_the_existing_ones(
    session, store, product, seller
):
    (first,) = upload(session, product, seller, store, ("a.jpg", jpeg_file(2400, 1800)))
    session.commit()
    second, third = upload(
        session, product, seller, store, ("b.png", png_file()), ("c.webp", webp_file())
    )
    session.commit()

    assert [p.id for p in product.photos] == [first.id, second.id, third.id]
    assert [p.position for p in product.photos] == [0, 1, 2]
    assert product.main_photo == first
    assert (first.width, first.height) == (1200, 900)
    assert first.uploaded_by_id == seller.id
    for photo in (first, second, third):
        assert len(photo.key) == 32
        for size in photos.SIZES:
            assert open_stored(store.path(photo.key, size)).format == "JPEG"
    assert len(stored_files(store)) == 9  # no temporary files left


def test_one_bad_file_refuses_the_whole_upload_and_names_it(session, store, product, seller):
    with pytest.raises(LineErrors) as refused:
        upload(
            session,
            product,
            seller,
            store,
            ("good.jpg", jpeg_file()),
            ("page.png", HTML),
            ("fine.png", png_file()),
        )
    session.rollback()

    assert list(refused.value.errors) == [1]
    assert str(refused.value.errors[1]) == NOT_A_PHOTO
    assert stored_files(store) == []
    session.refresh(product)
    assert product.photos == []


def test_no_more_photos_than_the_limit(session, store, product, seller):
    upload(session, product, seller, store, *[(f"{n}.jpg", jpeg_file()) for n in range(3)])
    session.commit()
    before = stored_files(store)

    with pytest.raises(DomainError, match="at most 4 photos; this one has 3, so you can add 1"):
        upload(session, product, seller, store, ("x.jpg", jpeg_file()), ("y.jpg", jpeg_file()))
    session.rollback()

    assert stored_files(store) == before
    session.refresh(product)
    assert len(product.photos) == 3


def test_a_rolled_back_upload_leaves_no_files(session, store, product, seller):
    upload(session, product, seller, store, ("a.jpg", jpeg_file()), ("b.jpg", jpeg_file()))
    assert len(stored_files(store)) == 6

    session.rollback()

    assert stored_files(store) == []


def test_a_committed_upload_keeps_its_files_when_a_later_transaction_rolls_back(
    session, store, product, seller
):
    upload(session, product, seller, store, ("a.jpg", jpeg_file()))
    session.commit()
    kept = stored_files(store)
    upload(session, product, seller, store, ("b.jpg", jpeg_file()))

    session.rollback()

    assert stored_files(store) == kept and len(kept) == 3


def test_each_change_refreshes_cached_catalog_pages_once_committed(session, store, product, seller):
    sent = []
    with catalog_changed.connected_to(lambda sender: sent.append(sender)):
        (photo,) = upload(session, product, seller, store, ("a.jpg", jpeg_file()))
        assert sent == []
        session.commit()
        assert len(sent) == 1
        photos.remove(session, photo, seller, utcnow(), store)
        session.commit()
    assert len(sent) == 2


# --- reordering and removing --------------------------------------------------------------------


@pytest.fixture
def three(session, store, product, seller):
    added = upload(session, product, seller, store, *[(f"{n}.jpg", jpeg_file()) for n in "abc"])
    session.commit()
    return added


def order_of(session, product) -> list[int]:
    session.refresh(product)
    assert [p.position for p in product.photos] == list(range(len(product.photos)))
    return [p.id for p in product.photos]


def test_making_a_photo_main_puts_it_first_and_keeps_the_others_in_order(
    session, product, seller, three
):
    a, b, c = three
    photos.make_main(session, c, seller, utcnow())
    session.commit()
    assert order_of(session, product) == [c.id, a.id, b.id]
    assert product.main_photo == c


def test_moving_swaps_a_photo_with_its_neighbour(session, product, seller, three):
    a, b, c = three
    photos.move(session, a, seller, utcnow(), "down")
    session.commit()
    assert order_of(session, product) == [b.id, a.id, c.id]
    photos.move(session, c, seller, utcnow(), "up")
    session.commit()
    assert order_of(session, product) == [b.id, c.id, a.id]


@pytest.mark.parametrize(("index", "direction"), [(0, "up"), (2, "down")])
def test_moving_past_either_end_is_refused(session, product, seller, three, index, direction):
    with pytest.raises(DomainError, match="already the"):
        photos.move(session, three[index], seller, utcnow(), direction)
    session.rollback()
    assert order_of(session, product) == [p.id for p in three]


def test_removing_a_photo_deletes_its_files_only_once_committed(
    session, store, product, seller, three
):
    a, b, c = three
    photos.remove(session, b, seller, utcnow(), store)
    assert all(path.exists() for path in photos.files_of(store, b.key))

    session.commit()

    assert not any(path.exists() for path in photos.files_of(store, b.key))
    assert all(path.exists() for path in photos.files_of(store, a.key))
    assert order_of(session, product) == [a.id, c.id]


def test_a_rolled_back_removal_keeps_the_photo_and_its_files(
    session, store, product, seller, three
):
    photos.remove(session, three[0], seller, utcnow(), store)
    session.rollback()

    assert all(path.exists() for path in photos.files_of(store, three[0].key))
    assert order_of(session, product) == [p.id for p in three]


def test_another_suppliers_product_and_photo_are_not_found(session, make, product, three):
    other = make.user(roles={Role.SUPPLIER}, organization=make.supplier())
    with pytest.raises(NotFound):
        photos.get_own_product(session, other, product.id)
    with pytest.raises(NotFound):
        photos.get_own_photo(session, other, product.id, three[0].id)
    own = make.product(supplier=other.organization)
    with pytest.raises(NotFound):  # someone else's photo under one's own product
        photos.get_own_photo(session, other, own.id, three[0].id)


@pytest.mark.parametrize("name", ["../../etc/passwd", "ABCDEF" * 6, "0" * 31, "0" * 33])
def test_only_generated_keys_name_files(store, name):
    with pytest.raises(ValueError):
        store.path(name, "large")
    with pytest.raises(ValueError):
        store.path("0" * 32, "original")
