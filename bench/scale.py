"""Scale-out benchmark: the mixed load of tests/scale/ against one instance, then two.

Builds the stack of tools/loadtest.py (a fresh PostgreSQL database with the demo data, the
Stripe stand-in, Redis behind a relay, gunicorn with gunicorn.conf.py and the production
settings), then runs the same closed-loop load (browsing, staff checkouts racing for scarce
stock, online payments with webhooks delivered to every instance, canteen goods-in) for
--seconds against one instance of --workers workers, and again against two such instances,
and reports:

- requests/s of each run, per instance, and the ratio two/one (the scaling ratio);
- where the machine's CPU went in each run: the gunicorn workers, the load generator
  (its processes and the stand-in), and what was left idle. On a machine of few cores the
  generator's share is capacity the servers do not get, so the ratio is also given per
  CPU-second of the servers ("work per server CPU-second", which stays the same if nothing
  shared — the database, Redis, a lock — limits the second instance);
- p50/p99 per page type in the two-instance run;
- the RSS of every worker after the run.

The invariants of tools/loadtest.check_invariants are checked after each run: the script exits
1 if one fails. The speed figures are only reported.

    .venv/bin/python bench/scale.py
    .venv/bin/python bench/scale.py --workers 1    # one worker each: room for a second instance
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving import run_facts, shown_command  # noqa: E402
from tools import loadtest  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """utime + stime of a process (and, with children, of its children that have exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _servers_cpu(stack: loadtest.Stack) -> float:
    # The master's children's time counts the workers gunicorn replaced (max_requests).
    return sum(
        _cpu_seconds(instance.process.pid, children=True)
        + sum(_cpu_seconds(pid) for pid in instance.worker_pids())
        for instance in stack.instances
    )


def _generator_cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime


def measure(stack: loadtest.Stack, instances: int, args) -> dict:
    loadtest.refill(stack.url, stack.fixture)
    stack.start(count=instances, workers=args.workers)
    # A short warm-up: templates compiled, search index built, connections open.
    loadtest.run_load(stack, seconds=3, shoppers=2, browsers=2, managers=0)
    servers, generator, wall = _servers_cpu(stack), _generator_cpu(), time.monotonic()
    result = loadtest.run_load(
        stack,
        seconds=args.seconds,
        processes=args.processes,
        browsers=args.browsers,
        shoppers=args.shoppers,
    )
    wall = time.monotonic() - wall
    servers = _servers_cpu(stack) - servers
    generator = _generator_cpu() - generator
    cores = os.cpu_count() or 1
    problems = loadtest.settled_invariants(stack)
    errors = result.server_errors()
    run = {
        "instances": instances,
        "workers_per_instance": args.workers,
        "requests": len(result.records),
        "requests_per_second": round(result.rate(), 1),
        "per_instance": {
            str(port): round(len(records) / result.seconds, 1)
            for port, records in sorted(result.by_port().items())
        },
        "p99_ms_per_instance": {
            str(port): round(result.percentile([r.seconds for r in records], 0.99) * 1000)
            for port, records in sorted(result.by_port().items())
        },
        "cpu_cores_used": {
            "servers": round(servers / wall, 2),
            "load_generator": round(generator / wall, 2),
            "idle": round(max(0.0, cores - (servers + generator) / wall), 2),
        },
        "requests_per_server_cpu_second": round(len(result.records) / max(servers, 1e-9), 1),
        "worker_rss_mb": [
            round(mb) for instance in stack.instances for mb in instance.worker_rss_mb()
        ],
        "server_errors": len(errors),
        "problems": problems,
        "summary": result.summary(),
    }
    stack.stop()
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server (any database on it): a fresh database is made there",
    )
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--browsers", type=int, default=8)
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "bench" / "results", help="where JSON goes"
    )
    args = parser.parse_args()

    facts = run_facts(os.getloadavg())
    with tempfile.TemporaryDirectory() as workdir:
        stack = loadtest.Stack.create(args.database_url, Path(workdir), relay=False)
        try:
            one = measure(stack, 1, args)
            two = measure(stack, 2, args)
        finally:
            stack.close()

    ratio = two["requests_per_second"] / one["requests_per_second"]
    efficiency = two["requests_per_server_cpu_second"] / one["requests_per_server_cpu_second"]
    print(f"$ {shown_command()}")
    print(
        f"{facts['timestamp']} · {facts['cores']} cores · {facts['platform']} · "
        f"commit {facts['git']['commit'][:10]}{' (dirty)' if facts['git']['dirty'] else ''}"
    )
    for run in (one, two):
        cpu = run["cpu_cores_used"]
        print(
            f"\n{run['instances']} instance(s) x {run['workers_per_instance']} workers: "
            f"{run['requests_per_second']} req/s; per instance {run['per_instance']} req/s, "
            f"p99 {run['p99_ms_per_instance']} ms"
        )
        print(
            f"  CPU cores: servers {cpu['servers']}, load generator {cpu['load_generator']}, "
            f"idle {cpu['idle']}; {run['requests_per_server_cpu_second']} requests per server "
            f"CPU-second; worker RSS {run['worker_rss_mb']} MB; 5xx/no answer: "
            f"{run['server_errors']}"
        )
    print("\nTwo-instance run, per page type:")
    for line in two["summary"][1:]:
        print(line)
    print(
        f"\nScaling ratio (two / one instance): {ratio:.2f}x; "
        f"work per server CPU-second, two / one: {efficiency:.2f}"
    )
    report = {**facts, "one": one, "two": two, "ratio": round(ratio, 2)}
    report["efficiency"] = round(efficiency, 2)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"scale-{stamp}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"written: {out}")
    failed = one["problems"] + two["problems"]
    for problem in failed:
        print(f"INVARIANT BROKEN: {problem}")
    return 1 if failed or one["server_errors"] or two["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
