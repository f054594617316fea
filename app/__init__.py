"""山海集 (Shanhai Market): the application factory."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from config import CONFIGS, INSTANCE_DIR, Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: str | type[Config] | None = None, **overrides) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    configure(app, config, overrides)
    configure_logging(app)
    configure_proxy(app)
    configure_extensions(app)
    configure_blueprints(app)
    configure_web(app)
    configure_cli(app)
    return app


def configure(app: Flask, config, overrides: dict) -> None:
    if config is None or isinstance(config, str):
        config = CONFIGS[config or os.environ.get("APP_CONFIG") or "development"]
    app.config.from_object(config)
    app.config.update(overrides)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **app.config["SERVER_DATABASE_ENGINE_OPTIONS"],
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        }
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        if app.config["APP_ENV"] == "production":
            raise RuntimeError("SECRET_KEY must be set in production.")
        app.config["SECRET_KEY"] = _local_secret_key(Path(app.instance_path))


def _local_secret_key(instance: Path) -> str:
    """A per-machine key for development, kept under instance/ (never committed)."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def configure_logging(app: Flask) -> None:
    """The app's loggers write to stderr at LOG_LEVEL: its modules' (app.*) as text, the
    request log (shanhai.request, app/web/requestlog.py) as one JSON object a line. Tests
    leave logging to pytest."""
    if app.testing:
        return
    text = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    # flask-limiter says when it falls back to local counting and when Redis is back.
    formats = {"app": text, "flask-limiter": text, "shanhai": "%(message)s"}
    for name, fmt in formats.items():
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(fmt))
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(app.config["LOG_LEVEL"])
    if not app.config["REQUEST_LOG"]:
        logging.getLogger("shanhai.request").setLevel(logging.WARNING)


def configure_proxy(app: Flask) -> None:
    count = app.config["PROXY_COUNT"]
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def configure_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (every model registered before anything queries)
    from app.extensions import babel, cache, csrf, db, limiter, login_manager, migrate
    from app.services import payments
    from app.web.i18n import select_locale
    from app.web.sqlite import configure_sqlite

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
    app.teardown_appcontext(_close_session)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    cache.init_app(app)
    login_manager.init_app(app)
    payments.init_app(app)


def _close_session(_error: BaseException | None = None) -> None:
    """Close the request's session before Flask-SQLAlchemy would (teardowns run in reverse).

    Closing rolls back; if the database dropped the connection after the response was built
    (a restart, an operator's pg_terminate_backend), that rollback fails. The response is
    already right and nothing uncommitted survives a dropped connection, so the failure must
    not turn it into a 500: the pool has discarded the connection; forget the session too.
    """
    from sqlalchemy.exc import OperationalError

    from app.extensions import db

    try:
        db.session.remove()
    except OperationalError as error:
        db.session.registry.clear()
        logging.getLogger(__name__).warning("Database connection lost at teardown: %s", error.orig)


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in our routes: an id an INTEGER column can hold, so /products/99999999999
    is a 404 rather than an overflow error from the database."""

    def __init__(self, url_map, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, **kwargs)


def configure_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter
    from app.admin.views import bp as admin_bp
    from app.auth.views import bp as auth_bp
    from app.board.views import bp as board_bp
    from app.canteen.views import bp as canteen_bp
    from app.catalog.views import bp as catalog_bp
    from app.counter.views import bp as counter_bp
    from app.inbox.views import bp as inbox_bp
    from app.invoices.views import bp as invoices_bp
    from app.media.views import bp as media_bp
    from app.pledges.views import bp as pledges_bp
    from app.review.views import bp as review_bp
    from app.shop.views import bp as shop_bp
    from app.shop.webhooks import bp as webhooks_bp
    from app.supplier.views import bp as supplier_bp
    from app.web.health import bp as health_bp
    from app.web.i18n import bp as i18n_bp

    app.register_blueprint(catalog_bp)
    app.register_blueprint(auth_bp, url_prefix="/auth")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(shop_bp)
    app.register_blueprint(webhooks_bp, url_prefix="/stripe")
    app.register_blueprint(counter_bp, url_prefix="/counter")
    app.register_blueprint(canteen_bp, url_prefix="/canteen")
    app.register_blueprint(supplier_bp, url_prefix="/supplier")
    app.register_blueprint(review_bp, url_prefix="/review")
    app.register_blueprint(invoices_bp, url_prefix="/invoices")
    app.register_blueprint(inbox_bp)
    app.register_blueprint(pledges_bp, url_prefix="/pledges")
    app.register_blueprint(board_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(i18n_bp)
    app.register_blueprint(health_bp)


def configure_web(app: Flask) -> None:
    from app.web import access, errors, filters, guards, mail, pagecache, requestlog, security

    requestlog.init_app(app)
    security.init_app(app)
    access.init_app(app)
    pagecache.init_app(app)
    guards.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    mail.init_app(app)


def configure_cli(app: Flask) -> None:
    from app.cli import register

    register(app)
