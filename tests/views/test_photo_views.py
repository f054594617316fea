"""Suppliers' photo pages, the photos on catalog pages, and how photo files are served."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import ProductPhoto, Role
from app.services import photos
from tests.conftest import page_text
from tests.services.test_photos import BAD_FILES, HTML, jpeg_file, png_file, webp_file


@pytest.fixture
def seller(make, client, actions):
    client.set_cookie("lang", "en")
    return actions.login_as(make.user(roles={Role.SUPPLIER}, organization=make.supplier()))


@pytest.fixture
def product(make, seller):
    return make.product(supplier=seller.organization, name_en="Dengying beef")


def photo_dir(app) -> Path:
    return Path(app.config["PHOTO_DIR"])


def files_in(app) -> set[Path]:
    return {path for path in photo_dir(app).rglob("*") if path.is_file()}


def send(actions, product, *files, **kwargs):
    return actions.post(
        f"/supplier/products/{product.id}/photos",
        {"photos": [(io.BytesIO(data), name) for name, data in files]},
        content_type="multipart/form-data",
        **kwargs,
    )


def keys_in_order(session, product) -> list[str]:
    session.refresh(product)
    return [photo.key for photo in product.photos]


def photo_keys(html: str, size: str) -> list[str]:
    return re.findall(rf"/photos/([0-9a-f]{{32}})-{size}\.jpg", html)


# --- the supplier's page ------------------------------------------------------------------------


def test_a_supplier_uploads_photos_and_buyers_see_them(app, client, actions, session, product):
    response = send(
        actions, product, ("front.jpg", jpeg_file(2000, 1500)), ("back.png", png_file())
    )

    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert "2 photos added." in page_text(page)
    first, second = keys_in_order(session, product)
    html = page.get_data(as_text=True)
    assert photo_keys(html, "medium") == [first, second]
    assert "Main photo" in page_text(page)

    detail = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert photo_keys(detail, "large") == [first, first, second]  # main, then each thumb's link
    assert photo_keys(detail, "thumb") == [first, second]
    assert 'width="1200" height="900"' in detail
    listing = client.get("/products").get_data(as_text=True)
    assert photo_keys(listing, "medium") == [first]
    assert 'alt="Dengying beef"' in listing and 'loading="lazy"' in listing
    for key in (first, second):
        assert client.get(f"/photos/{key}-thumb.jpg").status_code == 200


def test_a_product_without_photos_keeps_its_placeholder_tile(client, seller, product):
    html = client.get("/products").get_data(as_text=True)
    assert "placeholder-tile" in html and "/photos/" not in html


def test_photos_are_reordered_made_main_and_removed(app, client, actions, session, product):
    send(actions, product, *[(f"{n}.jpg", jpeg_file()) for n in "abc"])
    a, b, c = product.photos
    base = f"/supplier/products/{product.id}/photos"

    assert actions.post(f"{base}/{c.id}/main").status_code == 303
    assert keys_in_order(session, product) == [c.key, a.key, b.key]
    detail = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert photo_keys(detail, "large")[0] == c.key

    actions.post(f"{base}/{a.id}/move", {"direction": "down"})
    assert keys_in_order(session, product) == [c.key, b.key, a.key]
    actions.post(f"{base}/{a.id}/move", {"direction": "up"})
    assert keys_in_order(session, product) == [c.key, a.key, b.key]

    response = actions.post(f"{base}/{c.id}/delete", follow_redirects=True)
    assert "Photo removed." in page_text(response)
    assert keys_in_order(session, product) == [a.key, b.key]
    assert client.get(f"/photos/{c.key}-large.jpg").status_code == 404
    assert not any(path.name.startswith(c.key) for path in files_in(app))
    assert photo_keys(client.get("/products").get_data(as_text=True), "medium") == [a.key]


def test_moving_the_first_photo_earlier_says_it_cannot(client, actions, session, product):
    send(actions, product, ("a.jpg", jpeg_file()), ("b.jpg", jpeg_file()))
    first = product.photos[0]
    response = actions.post(
        f"/supplier/products/{product.id}/photos/{first.id}/move",
        {"direction": "up"},
        follow_redirects=True,
    )
    assert "This photo is already the first." in page_text(response)
    bad = actions.post(
        f"/supplier/products/{product.id}/photos/{first.id}/move", {"direction": "sideways"}
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_a_bad_file_is_refused_by_name_and_nothing_is_stored(
    app, actions, session, product, name, data, message
):
    before = files_in(app)

    response = send(actions, product, ("good.jpg", jpeg_file()), (name, data))

    assert response.status_code == 422
    text = page_text(response)
    assert f"{name} : {message}" in text
    assert "No photo was added." in text
    assert files_in(app) == before
    assert keys_in_order(session, product) == []


def test_a_file_over_the_size_limit_is_refused(app, actions, session, product, monkeypatch):
    monkeypatch.setitem(app.config, "PHOTO_MAX_BYTES", 50_000)
    before = files_in(app)

    response = send(actions, product, ("big.jpg", jpeg_file(2000, 2000) + b"\0" * 60_000))

    assert response.status_code == 422
    assert "big.jpg : The file is larger than 0.0477 MB." in page_text(response)
    assert files_in(app) == before


def test_a_50_mb_upload_is_refused_before_it_is_read(app, actions, session, product):
    before = files_in(app)
    response = send(actions, product, ("huge.jpg", b"\xff\xd8\xff" + b"\0" * (50 * 1024 * 1024)))
    assert response.status_code == 413
    assert "larger than allowed" in page_text(response)
    assert files_in(app) == before
    assert keys_in_order(session, product) == []


def test_sending_no_file_asks_for_one(actions, product):
    response = actions.post(
        f"/supplier/products/{product.id}/photos",
        {"photos": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Choose one or more photos." in page_text(response)


def test_no_more_than_the_limit_per_product(app, client, actions, session, product, monkeypatch):
    monkeypatch.setitem(app.config, "PHOTOS_PER_PRODUCT", 2)
    send(actions, product, ("a.jpg", jpeg_file()))

    response = send(actions, product, ("b.jpg", jpeg_file()), ("c.jpg", webp_file()))

    assert response.status_code == 422
    assert "at most 2 photos; this one has 1, so you can add 1 more" in page_text(response)
    assert len(keys_in_order(session, product)) == 1

    send(actions, product, ("b.jpg", jpeg_file()))
    full = client.get(f"/supplier/products/{product.id}/photos")
    assert "Remove one to add another." in page_text(full)
    assert 'type="file"' not in full.get_data(as_text=True)
    again = send(actions, product, ("c.jpg", jpeg_file()))
    assert again.status_code == 422
    assert "this one has 2, so you can add 0 more" in page_text(again)
    assert len(keys_in_order(session, product)) == 2


def test_an_upload_whose_database_work_fails_leaves_no_files(
    app, actions, session, product, monkeypatch
):
    # A row already holds the key the upload will be given, but it has no files: the files
    # are written, then the insert fails on the unique key and everything is rolled back.
    taken = "ab" * 16
    session.add(
        ProductPhoto(product=product, key=taken, width=1, height=1, created_at=product.created_at)
    )
    session.commit()
    monkeypatch.setattr(photos, "_new_key", lambda _store: taken)
    before = files_in(app)

    response = send(actions, product, ("a.jpg", jpeg_file()))

    assert response.status_code == 409
    assert "Try again" in page_text(response)
    assert files_in(app) == before
    assert keys_in_order(session, product) == [taken]


# --- who may do what ----------------------------------------------------------------------------


def photo_routes(product_id: int, photo_id: int):
    base = f"/supplier/products/{product_id}/photos"
    return [
        ("get", base),
        ("post", base),
        ("post", f"{base}/{photo_id}/main"),
        ("post", f"{base}/{photo_id}/move"),
        ("post", f"{base}/{photo_id}/delete"),
    ]


def test_another_suppliers_product_is_not_found_on_every_photo_route(
    app, client, actions, make, session, seller
):
    theirs = make.product()
    session.add(
        ProductPhoto(product=theirs, key="cd" * 16, width=1, height=1, created_at=theirs.created_at)
    )
    session.commit()
    (their_photo,) = theirs.photos
    mine = make.product(supplier=seller.organization)

    for method, url in [
        *photo_routes(theirs.id, their_photo.id),
        # Their photo id under my own product is not found either.
        *photo_routes(mine.id, their_photo.id)[2:],
    ]:
        response = client.get(url) if method == "get" else actions.post(url, {"direction": "up"})
        assert response.status_code == 404, url
    assert keys_in_order(session, theirs) == ["cd" * 16]


def test_staff_may_not_open_photo_pages(client, actions, make, product):
    actions.login_as(make.user(roles={Role.STAFF}))
    assert client.get(f"/supplier/products/{product.id}/photos").status_code == 403
    assert send(actions, product, ("a.jpg", jpeg_file())).status_code == 403


# --- serving ------------------------------------------------------------------------------------


def test_a_photo_is_served_as_a_jpeg_cached_for_good(actions, client, session, product):
    send(actions, product, ("a.png", png_file(800, 600)))
    (photo,) = product.photos
    client.delete_cookie("session")

    response = client.get(f"/photos/{photo.key}-medium.jpg")

    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data.startswith(b"\xff\xd8\xff")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cache = response.headers["Cache-Control"]
    assert "public" in cache and "max-age=31536000" in cache and "immutable" in cache
    assert response.headers["Content-Disposition"] == "inline; filename=photo-medium.jpg"
    assert "Set-Cookie" not in response.headers
    again = client.get(
        f"/photos/{photo.key}-medium.jpg", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize(
    "path",
    [
        "/photos/" + "0" * 32 + "-large.jpg",  # a well-formed key nobody has
        "/photos/{key}-original.jpg",
        "/photos/{key}-large.png",
        "/photos/{key}-large.jpg.html",
        "/photos/{KEY}-large.jpg",
        "/photos/{key}",
        "/photos/..%2F..%2Fconfig.py",
        "/photos/../config.py",
        "/photos/%2E%2E%2F{key}-large.jpg",
        "/photos/{key}-large.jpg%00",
    ],
)
def test_anything_but_a_stored_photo_is_not_found(actions, client, product, path):
    send(actions, product, ("a.jpg", jpeg_file()))
    (photo,) = product.photos
    url = path.format(key=photo.key, KEY=photo.key.upper())
    response = client.get(url)
    assert response.status_code in (404, 400), url
    assert not response.data.startswith(b"\xff\xd8\xff")


def test_the_product_list_loads_photos_without_a_query_per_product(app, client, make):
    def statements_for(url):
        seen = []

        def count(*_args):
            seen.append(1)

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    def add_products(count):
        for _ in range(count):
            product = make.product()
            make._add(
                ProductPhoto(
                    product=product,
                    key=photos.secrets.token_hex(16),
                    width=1200,
                    height=900,
                    created_at=product.created_at,
                )
            )

    add_products(2)
    few = statements_for("/products")
    assert few > 0
    add_products(6)
    many = statements_for("/products")
    assert many == few
    assert len(photo_keys(client.get("/products").get_data(as_text=True), "medium")) == 8


def test_uploaded_html_never_comes_back_as_html(actions, client, session, product):
    response = send(actions, product, ("page.jpg", HTML))
    assert response.status_code == 422
    assert b"<script>alert(document.cookie)" not in response.data
