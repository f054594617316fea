"""Upgrading a database that holds data keeps the data (SQLite rebuilds tables to alter them)."""

import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.extensions import db

NOW = "2026-11-27 00:00:00"


def test_upgrading_past_a_table_rebuild_keeps_every_order_line(tmp_path):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with app.app_context():
        upgrade(revision="0003")  # before 0004 rebuilt the orders table
        with db.engine.begin() as connection:
            run = connection.exec_driver_sql
            run(
                "INSERT INTO regions (id, code, name_zh, name_en, province_zh, province_en, kind,"
                " sort_order) VALUES (1, 'dz', '达州', '', '', '', 'paired', 0)"
            )
            run(
                "INSERT INTO categories (id, slug, name_zh, name_en, sort_order)"
                " VALUES (1, 'c', '类', '', 0)"
            )
            run(
                "INSERT INTO organizations (id, code, kind, name_zh, name_en, region_id, address,"
                " contact_name, contact_phone, active, created_at, county_zh,"
                " households_benefited, certifications, story_zh, story_en)"
                f" VALUES (1, 'S', 'supplier', '社', '', 1, '', '', '', 1, '{NOW}', '', 0, '',"
                " '', '')"
            )
            run(
                "INSERT INTO users (id, email, name, password_hash, active, session_version,"
                f" created_at) VALUES (1, 'a@shanhai.demo', '甲', 'x', 1, 1, '{NOW}')"
            )
            run(
                "INSERT INTO products (id, code, supplier_id, origin_region_id, category_id,"
                " status, name_zh, name_en, name_pinyin, name_initials, search_keys,"
                " description_zh, description_en, unit, retail_price_fen, stock, popularity,"
                " featured, lead_time_days, county_zh, cooperative_zh, households_benefited,"
                " certifications, storage_zh, created_at, updated_at) VALUES (1, 'P', 1, 1, 1,"
                " 'active', '货', '', '', '', '', '', '', 'box', 100, 5, 0, 0, 2, '', '', 0, '',"
                f" '', '{NOW}', '{NOW}')"
            )
            run(
                "INSERT INTO orders (id, number, pickup_code, buyer_id, status, payment_status,"
                " payment_method, fulfilment, total_fen, placed_at) VALUES (1, '261127-00001',"
                f" '123456', 1, 'placed', 'unpaid', 'counter', 'counter_pickup', 100, '{NOW}')"
            )
            run(
                "INSERT INTO order_lines (id, order_id, product_id, product_code, name_zh,"
                " name_en, unit, unit_price_fen, quantity, total_fen, origin_region_id,"
                " origin_region_name_zh, supplier_id, supplier_name_zh) VALUES (1, 1, 1, 'P',"
                " '货', '', 'box', 100, 1, 100, 1, '达州', 1, '社')"
            )
            run(
                "INSERT INTO order_events (id, order_id, machine, to_state, at, note)"
                f" VALUES (1, 1, 'status', 'placed', '{NOW}', '')"
            )
        upgrade()
        with db.engine.connect() as connection:
            count = connection.scalar
            assert count(sa.text("SELECT count(*) FROM order_lines")) == 1
            assert count(sa.text("SELECT count(*) FROM order_events")) == 1
            assert count(sa.text("SELECT delivery_address FROM orders")) == ""
            # ...and the keys are enforced again afterwards.
            assert count(sa.text("PRAGMA foreign_keys")) == 1
        db.engine.dispose()
