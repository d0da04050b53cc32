"""Ledger throughput against pgbench on the same PostgreSQL, in the same run.

``python -m bench ledger`` (PostgreSQL at ``TANHUI_BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; scratch databases are created and dropped):

0. baseline: ``pgbench -i -s 10`` then ``pgbench -c 8 -j 2 -T <seconds>`` (TPC-B-like);
1. (a) single two-leg entries through ``post_entry``, 8 worker processes, 1,000 funded accounts;
2. (b) batches of 1,000 entries through ``post_entries`` (2 worker processes, disjoint accounts);
3. (c) 8 workers all paying into the one hot fee account (16 balance shards), and the same with
   the fee account on a single balance row, to show what the shards buy; (d) the same two with
   each sale keeping its transaction open 5 ms longer, as a checkout that writes more does.

Each worker commits one transaction per entry (a) / per batch (b) through ``tanhui.db.retrying``.
Prints entries/s and the ratio to pgbench's tps. ``BENCH_SECONDS`` sets each phase's length.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url

from bench.scratch import BASE_URL, drop_database, fresh_database

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WORKERS = 8
ACCOUNTS = 1_000
BATCH_SIZE = 1_000
BATCH_WORKERS = 2
TARGETS = {"a": 0.5, "b": 10.0, "c": 0.4}
LINGER_S = 0.005


@dataclass
class Result:
    name: str
    entries: int
    seconds: float
    client_cpu_s: float = 0.0
    load: str = ""

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def _pgbench_args(url: str) -> list[str]:
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    args += ["-U", parsed.username or "postgres"]
    return args


def pgbench_tps(seconds: float) -> float:
    """TPC-B-like tps of ``pgbench -c 8 -j 2`` at scale 10 in a scratch database."""
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (Debian: postgresql-client)")
    name = "tanhui_bench_pgbench"
    url = fresh_database(name)
    try:
        base = ["pgbench", *_pgbench_args(url)]
        subprocess.run([*base, "-i", "-s", "10", "-q", name], check=True, capture_output=True)
        done = subprocess.run(
            [*base, "-c", "8", "-j", "2", "-T", str(int(seconds)), name],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        drop_database(name)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if match is None:
        match = re.search(r"tps = ([0-9.]+)", done.stdout)
    if match is None:
        raise SystemExit(f"cannot read pgbench's tps from:\n{done.stdout}")
    return float(match.group(1))


# --- the ledger's side -----------------------------------------------------------------------


def _engine(url: str) -> Any:
    from tanhui.db import create_engine
    from tanhui.settings import Environment, load_settings

    settings = load_settings(
        env=Environment.test,
        database_url=url,
        secret_key="bench-" + "x" * 40,
        db_pool_size=4,
    )
    return create_engine(settings)


def _setup(url: str) -> dict[str, Any]:
    """Accounts for every phase: 1,000 funded users, a hot fee account, a single-row twin."""
    from tanhui.db import unit_of_work
    from tanhui.migrate import upgrade
    from wallet import service

    engine = _engine(url)
    upgrade(engine)
    with unit_of_work(engine) as session:
        source = service.system_account(session, "issuance", "CNY")
        users = [
            service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
            for _ in range(ACCOUNTS)
        ]
        fees = service.system_account(session, "fees", "CNY")
        single = service.open_account(session, asset="CNY", owner="system:fees_one_row", floor=0)
        service.post_entries(
            session,
            [
                service.EntryRequest(
                    code="issuance",
                    transfers=[service.Transfer(source.id, user.id, 10**12)],
                )
                for user in users
            ],
        )
        ids = {
            "users": [str(user.id) for user in users],
            "fees": str(fees.id),
            "single": str(single.id),
        }
    engine.dispose()
    return ids


def _single_worker(url: str, ids: list[str], seconds: float, seed: int, queue: Any) -> None:
    from tanhui.db import retrying
    from wallet import service

    engine = _engine(url)
    rng = random.Random(seed)
    accounts = [uuid.UUID(i) for i in ids]
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        debit, credit = rng.sample(accounts, 2)
        key = f"a-{seed}-{count}"

        def work(session: Any, debit: Any = debit, credit: Any = credit, key: str = key) -> None:
            service.post_entry(
                session,
                code="transfer",
                transfers=[service.Transfer(debit, credit, rng.randint(1, 100))],
                idempotency_key=key,
            )

        retrying(engine, work)
        count += 1
    queue.put((count, time.perf_counter() - start, time.process_time() - cpu_start))
    engine.dispose()


def _hot_worker(
    url: str, payer: str, hot: str, seconds: float, seed: int, linger_s: float, queue: Any
) -> None:
    from tanhui.db import retrying
    from wallet import service

    engine = _engine(url)
    payer_id, hot_id = uuid.UUID(payer), uuid.UUID(hot)
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        key = f"c-{hot}-{linger_s}-{seed}-{count}"

        def work(session: Any, key: str = key) -> None:
            service.post_entry(
                session,
                code="purchase",
                transfers=[service.Transfer(payer_id, hot_id, 3)],
                idempotency_key=key,
            )
            if linger_s:  # the rest of a checkout's transaction (orders, audit ...)
                time.sleep(linger_s)

        retrying(engine, work)
        count += 1
    queue.put((count, time.perf_counter() - start, time.process_time() - cpu_start))
    engine.dispose()


def _batch_worker(url: str, ids: list[str], seconds: float, seed: int, queue: Any) -> None:
    from tanhui.db import retrying
    from wallet import service

    engine = _engine(url)
    rng = random.Random(seed)
    accounts = [uuid.UUID(i) for i in ids]
    count = 0
    batches = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        requests = []
        for position in range(BATCH_SIZE):
            debit, credit = rng.sample(accounts, 2)
            requests.append(
                service.EntryRequest(
                    code="transfer",
                    transfers=[service.Transfer(debit, credit, rng.randint(1, 100))],
                    idempotency_key=f"b-{seed}-{batches}-{position}",
                )
            )

        def work(session: Any, requests: list[Any] = requests) -> int:
            results = service.post_entries(session, requests)
            return sum(1 for result in results if result.status == "posted")

        count += retrying(engine, work)
        batches += 1
    queue.put((count, time.perf_counter() - start, time.process_time() - cpu_start))
    engine.dispose()


def _run(name: str, jobs: list[tuple[Any, tuple[Any, ...]]]) -> Result:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=target, args=(*args, queue)) for target, args in jobs]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=SECONDS * 10 + 120) for _ in processes]
    for process in processes:
        process.join()
    entries = sum(count for count, _, _ in outcomes)
    seconds = max(elapsed for _, elapsed, _ in outcomes)
    cpu = sum(used for _, _, used in outcomes)
    return Result(name, entries, seconds, cpu, _load())


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    print(f"ledger benchmark: {SECONDS:.0f} s per phase, PostgreSQL at {make_url(BASE_URL).host}")
    print(f"{os.cpu_count()} CPUs, load average {_load()} (1/5/15 min) at the start")
    tps = pgbench_tps(SECONDS)
    print(f"pgbench (TPC-B-like, scale 10, 8 clients, 2 threads): {tps:,.0f} tps, load {_load()}")

    name = "tanhui_bench_ledger"
    url = fresh_database(name)
    try:
        ids = _setup(url)
        users = ids["users"]
        results = [
            (
                "a1",
                _run(
                    "(a1) single 2-leg entries, 1 worker (latency)",
                    [(_single_worker, (url, users, SECONDS / 2, 99))],
                ),
            ),
            (
                "a",
                _run(
                    "(a) single 2-leg entries, 8 workers",
                    [(_single_worker, (url, users, SECONDS, n)) for n in range(WORKERS)],
                ),
            ),
            (
                "b",
                _run(
                    f"(b) batches of {BATCH_SIZE}, {BATCH_WORKERS} workers",
                    [
                        (_batch_worker, (url, users[n::BATCH_WORKERS], SECONDS, 100 + n))
                        for n in range(BATCH_WORKERS)
                    ],
                ),
            ),
            (
                "c",
                _run(
                    "(c) 8 workers into the hot fee account (16 shards)",
                    [
                        (_hot_worker, (url, users[n], ids["fees"], SECONDS, n, 0.0))
                        for n in range(WORKERS)
                    ],
                ),
            ),
            (
                "c1",
                _run(
                    "(c') same, fee account on one balance row",
                    [
                        (_hot_worker, (url, users[n], ids["single"], SECONDS, n, 0.0))
                        for n in range(WORKERS)
                    ],
                ),
            ),
            (
                "d",
                _run(
                    f"(d) as (c), each sale {LINGER_S * 1000:.0f} ms longer in its transaction",
                    [
                        (_hot_worker, (url, users[8 + n], ids["fees"], SECONDS, n, LINGER_S))
                        for n in range(WORKERS)
                    ],
                ),
            ),
            (
                "d1",
                _run(
                    "(d') as (c'), the same longer transactions",
                    [
                        (_hot_worker, (url, users[8 + n], ids["single"], SECONDS, n, LINGER_S))
                        for n in range(WORKERS)
                    ],
                ),
            ),
        ]
        _verify(url)
    finally:
        drop_database(name)
    print(
        f"{'phase':<52} {'entries':>8} {'entries/s':>9} {'x pgbench':>9} {'target':>10}"
        f" {'client CPU/entry':>16} {'load after':>14}"
    )
    for key, result in results:
        ratio = result.rate / tps if tps else 0.0
        target = TARGETS.get(key)
        mark = "" if target is None else (f">={target:g}x " + ("ok" if ratio >= target else "MISS"))
        cpu_ms = 1000 * result.client_cpu_s / result.entries if result.entries else 0.0
        print(
            f"{result.name:<52} {result.entries:>8,} {result.rate:>9,.0f} {ratio:>8.2f}x"
            f" {mark:>10} {cpu_ms:>13.2f} ms {result.load:>14}"
        )


def _verify(url: str) -> None:
    from wallet.service import verify_ledger_snapshot

    engine = _engine(url)
    started = time.perf_counter()
    report = verify_ledger_snapshot(engine)
    engine.dispose()
    state = "ok" if report.ok else f"FAULT: {report.first_fault}"
    print(
        f"verify: {state}, {report.entries:,} entries, {report.postings:,} postings "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
