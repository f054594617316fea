"""Configuration classes, read from environment variables.

`create_app("development")` (the default), `"testing"` or `"production"` picks one. Every
setting that differs between machines comes from the environment, never from code.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_list(name: str, default: str = "") -> list[str]:
    return [
        item.strip().lower() for item in os.environ.get(name, default).split(",") if item.strip()
    ]


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Config:
    #: Which of the classes below is in force; checked by commands that must not run in production.
    APP_ENV = "base"
    # A development key is generated per machine (see DevelopmentConfig); production refuses to
    # start without SECRET_KEY, so a fallback secret can never reach a real deployment.
    SECRET_KEY = os.environ.get("SECRET_KEY")

    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'shanhai.sqlite3'}"
    )
    #: Server databases drop idle connections; check each one before use (a SQLite file has
    #: nothing to check, and the ping would be a query on every request).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    #: A sync worker serves one request at a time, so a small pool per process is enough; it
    #: bounds the connections: processes x (DATABASE_POOL_SIZE + 2) < max_connections.
    SERVER_DATABASE_ENGINE_OPTIONS: dict = {
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_size": _env_int("DATABASE_POOL_SIZE", 3),
        "max_overflow": 2,
        "pool_timeout": 10,
    }
    REDIS_URL = os.environ.get("REDIS_URL") or None

    # Rate limits: memory storage in the embedded default, Redis when REDIS_URL is set, shared
    # by every process. When Redis does not answer, each process counts in its own memory
    # (logged by flask-limiter) and logins get the stricter LOGIN_RATE_LIMIT_FALLBACK, since
    # every process then allows it on its own.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    RATELIMIT_STORAGE_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour")
    LOGIN_RATE_LIMIT_FALLBACK = os.environ.get(
        "LOGIN_RATE_LIMIT_FALLBACK", "3 per minute; 15 per hour"
    )
    REGISTER_RATE_LIMIT = os.environ.get("REGISTER_RATE_LIMIT", "5 per hour")

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = {"zh_CN": "中文", "en": "English"}

    #: Staff may register themselves only with an address at one of these domains.
    REGISTRATION_EMAIL_DOMAINS = _env_list("REGISTRATION_EMAIL_DOMAINS", "shanhai.demo")

    #: Without a secret key the shop offers only payment at the counter.
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY") or None
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    #: Where the stripe library sends API calls; a local stand-in in tests and demos.
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None
    #: Offered in Checkout, when Stripe has them enabled for the account: card, alipay, wechat_pay.
    STRIPE_PAYMENT_METHODS = _env_list("STRIPE_PAYMENT_METHODS", "card")
    STRIPE_TIMEOUT_SECONDS = _env_int("STRIPE_TIMEOUT_SECONDS", 10)
    STRIPE_NETWORK_RETRIES = _env_int("STRIPE_NETWORK_RETRIES", 1)
    #: An online order holds its stock this long; unpaid after it, the stock is released.
    ONLINE_PAYMENT_MINUTES = _env_int("ONLINE_PAYMENT_MINUTES", 45)

    #: Canteen bulk orders above this total (in fen) need the canteen manager's approval.
    CANTEEN_APPROVAL_THRESHOLD_FEN = _env_int("CANTEEN_APPROVAL_THRESHOLD_FEN", 500_000)
    #: At goods-in, a delivered quantity (accepted plus refused) more than this percentage above
    #: the ordered one needs a reason (weights differ; a tenth more is ordinary).
    GOODS_IN_TOLERANCE_PERCENT = _env_int("GOODS_IN_TOLERANCE_PERCENT", 10)
    #: At goods-in, accepted and refused together may be at most this percentage of the ordered
    #: quantity, reason or not: no canteen receives twice what it ordered by accident.
    GOODS_IN_MAX_PERCENT = _env_int("GOODS_IN_MAX_PERCENT", 200)
    #: Uploaded order sheets above this size are refused before they are read.
    ORDER_SHEET_MAX_BYTES = _env_int("ORDER_SHEET_MAX_BYTES", 2 * 1024 * 1024)
    ORDER_SHEET_MAX_ROWS = _env_int("ORDER_SHEET_MAX_ROWS", 2000)
    #: Files of offline sales uploaded on the web; `flask import-sales` takes larger ones.
    SALES_IMPORT_MAX_BYTES = _env_int("SALES_IMPORT_MAX_BYTES", 10 * 1024 * 1024)
    SALES_IMPORT_MAX_ROWS = _env_int("SALES_IMPORT_MAX_ROWS", 20_000)
    #: A running pledge whose share of the target met is more than this many percentage points
    #: below the share of its period elapsed is flagged on the coordinator's pledge list.
    PLEDGE_BEHIND_MARGIN_PERCENT = _env_int("PLEDGE_BEHIND_MARGIN_PERCENT", 5)
    #: A pledge's XLSX export lists its ledger lines up to this many (the CSV has them all).
    REPORT_XLSX_MAX_LINES = _env_int("REPORT_XLSX_MAX_LINES", 50_000)
    #: Seconds the public board's figures are reused before they are computed again.
    BOARD_CACHE_SECONDS = _env_int("BOARD_CACHE_SECONDS", 30)

    #: E-mail. Without MAIL_SERVER messages stay in the outbox (/admin/outbox) unsent.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = _env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "0") == "1"
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "noreply@shanhai.demo")
    MAIL_TIMEOUT_SECONDS = _env_int("MAIL_TIMEOUT_SECONDS", 10)
    #: Put in front of links in e-mails: the address people reach the shop at.
    SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:5000")

    #: A font with Chinese glyphs for PDF invoices (TrueType/OpenType, or a .ttc collection).
    #: Empty: the first of app.services.pdf.FONT_CANDIDATES found on the machine.
    PDF_FONT_PATH = os.environ.get("PDF_FONT_PATH") or None

    #: Suppliers' listings: a retail or tier price changed by more than this percentage (up or
    #: down) goes to a coordinator for review; smaller changes apply at once.
    PRODUCT_REVIEW_PRICE_CHANGE_PERCENT = _env_int("PRODUCT_REVIEW_PRICE_CHANGE_PERCENT", 10)
    #: Files of listings uploaded on the web; `flask import-products` takes larger ones.
    PRODUCT_IMPORT_MAX_BYTES = _env_int("PRODUCT_IMPORT_MAX_BYTES", 5 * 1024 * 1024)
    PRODUCT_IMPORT_MAX_ROWS = _env_int("PRODUCT_IMPORT_MAX_ROWS", 5000)
    #: Where product photos are stored (re-encoded, under generated names). Outside the code
    #: tree; back it up with the database.
    PHOTO_DIR = os.environ.get("PHOTO_DIR") or str(INSTANCE_DIR / "photos")
    #: An uploaded photo larger than this, or with more pixels, is refused before decoding.
    PHOTO_MAX_BYTES = _env_int("PHOTO_MAX_BYTES", 10 * 1024 * 1024)
    PHOTO_MAX_PIXELS = _env_int("PHOTO_MAX_PIXELS", 40_000_000)
    PHOTOS_PER_PRODUCT = _env_int("PHOTOS_PER_PRODUCT", 8)

    #: Seconds a process reuses its in-memory search index (app.services.search_index) before
    #: reading the catalog again; catalog edits replace it at once (across processes with Redis).
    SEARCH_INDEX_SECONDS = _env_int("SEARCH_INDEX_SECONDS", 30)

    PRODUCTS_PER_PAGE = _env_int("PRODUCTS_PER_PAGE", 24)
    ADMIN_ROWS_PER_PAGE = 50
    #: Seconds a rendered catalog page (the part that is the same for every buyer) is reused.
    #: Catalog edits clear it at once; stock states ("sold out") may lag by up to this long on
    #: list pages, never on the product page's checkout path.
    CATALOG_CACHE_SECONDS = _env_int("CATALOG_CACHE_SECONDS", 30)
    # In-process by default; shared by every process when Redis is configured. A Redis that
    # fails or does not answer within CACHE_REDIS_TIMEOUT_SECONDS is left alone for
    # CACHE_REDIS_RETRY_SECONDS while pages are built from the database (app/web/rediscache.py).
    CACHE_TYPE = "app.web.rediscache.ResilientRedisCache" if REDIS_URL else "SimpleCache"
    CACHE_REDIS_URL = REDIS_URL
    CACHE_REDIS_TIMEOUT_SECONDS = float(os.environ.get("CACHE_REDIS_TIMEOUT_SECONDS", "0.5"))
    CACHE_REDIS_RETRY_SECONDS = float(os.environ.get("CACHE_REDIS_RETRY_SECONDS", "5"))
    #: Keys of this deployment in a Redis that others may share (cache and rate limits).
    CACHE_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "shanhai") + ":"
    RATELIMIT_KEY_PREFIX = CACHE_KEY_PREFIX + "limits"
    CACHE_THRESHOLD = 2000  # SimpleCache entries per process before it evicts

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session; forms left open work
    #: Strict-Transport-Security max-age (app/web/security.py), sent only in production, where
    #: it defaults to a year; 0 turns it off. Elsewhere the site may be plain http.
    HSTS_SECONDS = 0

    #: The app's log level (stderr); the request log is one JSON line per request at INFO.
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
    REQUEST_LOG = os.environ.get("REQUEST_LOG", "1") == "1"

    MAX_CONTENT_LENGTH = 25 * 1024 * 1024
    #: How many reverse proxies stand in front of the app. Behind one, set 1: rate limits and
    #: logs then use the client's address from X-Forwarded-For instead of the proxy's.
    PROXY_COUNT = _env_int("PROXY_COUNT", 0)
    #: Static URLs carry a content hash (app.web.filters.asset), so they can be cached long.
    SEND_FILE_MAX_AGE_DEFAULT = 365 * 24 * 3600


class DevelopmentConfig(Config):
    APP_ENV = "development"
    DEBUG = False  # the quick start serves like production would; FLASK_DEBUG=1 turns it on


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    SECRET_KEY = "testing-only-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    RATELIMIT_STORAGE_URI = "memory://"
    REGISTRATION_EMAIL_DOMAINS = ["shanhai.demo"]
    STRIPE_SECRET_KEY = None
    STRIPE_WEBHOOK_SECRET = None
    STRIPE_API_BASE = None
    STRIPE_PAYMENT_METHODS = ["card"]
    STRIPE_NETWORK_RETRIES = 0
    ONLINE_PAYMENT_MINUTES = 45
    CANTEEN_APPROVAL_THRESHOLD_FEN = 500_000
    GOODS_IN_TOLERANCE_PERCENT = 10
    GOODS_IN_MAX_PERCENT = 200
    PLEDGE_BEHIND_MARGIN_PERCENT = 5
    MAIL_SERVER = None
    SITE_URL = "http://shanhai.test"
    CATALOG_CACHE_SECONDS = 0
    # Tests change the catalog inside a transaction they roll back: no signal says so.
    SEARCH_INDEX_SECONDS = 0
    CACHE_TYPE = "NullCache"
    CACHE_NO_NULL_WARNING = True


class ProductionConfig(Config):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = "https"
    HSTS_SECONDS = _env_int("HSTS_SECONDS", 365 * 24 * 3600)


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
