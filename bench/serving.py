"""What the benchmarks share: gunicorn started alike for the app and the bare page, and how a
run records the command and commit that produced its figures."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Two servers run side by side: without --no-control-socket (gunicorn 27) both would claim
# ~/.gunicorn/gunicorn.ctl.
GUNICORN_SETTINGS = [
    *("--workers", "2", "--worker-class", "sync", "--log-level", "warning"),
    "--no-control-socket",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(target: str, port: int) -> list[str]:
    # Without --access-logfile gunicorn keeps no access log, so no log writes are timed.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        *GUNICORN_SETTINGS,
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT),
        target,
    ]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def shown_command() -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return shlex.join([str(python), *sys.argv])


def git_state() -> dict:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def run_facts(load_average: tuple[float, ...]) -> dict:
    """What every benchmark's JSON report starts with: when, how, on what and at which commit."""
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shown_command(),
        "cwd": str(Path.cwd()),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_average],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git": git_state(),
    }
