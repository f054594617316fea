"""The baseline for bench/catalog.py: a Flask app that does nothing but return a small page.

Served by gunicorn with exactly the settings of the real app, it measures what the server, the
loopback connection and the load generator cost on this machine, so the catalog pages can be
reported as a share of it rather than as absolute numbers that depend on the hardware.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)

PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>山海集 · bare</title></head>
<body><p>山海集</p></body>
</html>
"""


@app.get("/")
def index() -> str:
    return PAGE
