"""Entry point for gunicorn: `gunicorn wsgi:app`.

Production unless APP_CONFIG says otherwise: a server started without it must not fall back to
a per-host development key and cookies without the Secure flag.
"""

import os

from app import create_app

app = create_app(os.environ.get("APP_CONFIG") or "production")
