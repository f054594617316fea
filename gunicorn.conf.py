"""Gunicorn settings for serving 山海集 in production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment without editing this file (GUNICORN_CMD_ARGS
also works, and wins). The README's "Running in production" explains the choices.
"""

import os

#: Where to listen. Behind the intranet's reverse proxy (which terminates HTTPS), a local port.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

#: Sync workers: each request holds one worker while it waits for the database, so run about
#: two per core. Every worker has its own connection pool (DATABASE_POOL_SIZE + 2 at most), so
#: workers x instances x that must stay under PostgreSQL's max_connections (100 by default).
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1))
worker_class = "sync"

#: A request that runs longer than this is killed and its worker replaced; the slowest page
#: (a pledge's XLSX export of 50,000 lines) takes a few seconds.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
#: On SIGTERM (a deploy), requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
#: Keep-alive with the reverse proxy; a little longer than nothing saves a handshake per request.
keepalive = 5

#: Replace each worker after this many requests (with jitter, so they do not all restart at
#: once): whatever a long-lived process accumulates is given back.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = max_requests // 10

#: Each worker builds the app itself: nothing (database connections, the Stripe client, the
#: search index) is shared across a fork.
preload_app = False

#: The heartbeat file on tmpfs: a worker stalled on a slow disk is not mistaken for a dead one.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

#: The app writes its own request log (one JSON line per request with its X-Request-ID,
#: app/web/requestlog.py), so gunicorn's access log is off; its error log goes to stderr.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

#: The control socket's default path is per user, so two instances on one host would share
#: (and remove) one socket; off unless asked for.
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "0") != "1"

#: Addresses allowed to set X-Forwarded-* for gunicorn itself; the app reads the client's
#: address through PROXY_COUNT (config.py) instead.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
