"""Entry point for gunicorn: `gunicorn wsgi:app` (APP_CONFIG=production in production)."""

from app import create_app

app = create_app()
