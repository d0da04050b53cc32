"""Carbon-inclusion ingestion against a plain COPY of the same rows, in the same run.

``python -m bench points`` (PostgreSQL at ``TANHUI_BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; a scratch database is created and dropped):

1. ``BENCH_RESIDENTS`` residents (default 5,000) and two data partners (a bus operator and a
   MaaS app) are registered through the services;
2. a warm-up pass opens every resident's accounts (the steady state of a running city);
3. measured, twice: ``BENCH_BATCHES`` signed batches of 1,000 events (default 60), alternating
   between the partners, first with every event from another resident (uniform: the ledger's
   worst case, one pair of postings per event), then as a partner's daily export (grouped: 4
   events per resident). Each batch goes through ``ingest_with_retries`` as the HTTP route
   calls it: the HMAC signature, replay claim, JSON schema, per-event duplicate check, resident
   lookup by phone blind index, factor versions, plausibility, cross-partner activity
   fingerprints, daily caps, the ledger postings (grams and points, hash-chained journal),
   receipts, rejections and the audit record. About 1 % of events repeat another partner's act,
   a few exceed caps;
4. measured again, uniform, with ``BENCH_WORKERS`` client processes (default 2; 0 skips it)
   each ingesting its share of the batches at the same time, as several server workers
   (``tanhui serve --workers N``) would: reported on its own line, next to the serial figures,
   never instead of them. Each process ingests one batch before the clock starts (its caches
   and prepared statements), and the time is from the start to the last process's end;
5. the rejections by reason, and ``wallet verify`` of the whole ledger (one snapshot: chains,
   balanced entries, balances equal to the postings) after all phases, concurrent included;
6. baseline: the accepted rows of ``inclusion_event`` are read back and written with ``COPY``
   into an unindexed table of the same columns (the physical floor for storing those rows);
7. the floor of ingestion itself: only the writes an accepted event needs whatever the code
   around them (its receipt, a credit posting of grams and one of points, the two balance rows
   those postings change, into the real tables with their indexes and constraints), written
   by ``COPY`` and one ``UPDATE`` per 1,000 events with no check, no lookup and no Python
   beyond the rows, each batch rolled back (so no commit either): once on one connection and
   once on ``max(BENCH_WORKERS, 1)`` connections at once. No ingestion can beat these rates on
   the same machine: they bound what the targets can ask of it.

Prints events/s for each, COPY rows/s and the ratios. Targets: >= 20,000 events/s, >= 0.25x COPY.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import make_url, text

from bench.scratch import drop_database, fresh_database

RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", "5000"))
BATCHES = int(os.environ.get("BENCH_BATCHES", "60"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BATCH_SIZE = 1_000
TARGET_RATE = 20_000
TARGET_RATIO = 0.25
SCENARIOS = [
    ("bus", 0.5, 2, 20),
    ("metro", 0.2, 3, 30),
    ("walk", 0.2, 2000, 9000),
    ("bike", 0.1, 1, 6),
]


def _phones(count: int) -> list[str]:
    return [f"+86139{index:08d}" for index in range(count)]


def _event(rng: random.Random, phone: str, now: Any, sequence: int) -> dict[str, Any]:
    pick = rng.random()
    scenario, _share, low, high = SCENARIOS[-1]
    for option in SCENARIOS:
        if pick < option[1]:
            scenario, _share, low, high = option
            break
        pick -= option[1]
    quantity = rng.randint(low, high) if scenario == "walk" else round(rng.uniform(low, high), 1)
    occurred = now - timedelta(seconds=rng.randint(600, 6 * 86400))
    return {
        "partner_event_id": f"ev-{sequence}",
        "resident": {"phone": phone},
        "scenario": scenario,
        "quantity": quantity,
        "occurred_at": occurred.isoformat(),
    }


def main() -> None:
    import base64
    import secrets

    from registry.inclusion.service import ingest, partners, residents
    from registry.inclusion.service.signatures import sign
    from tanhui.db import create_engine, unit_of_work, utcnow
    from tanhui.migrate import upgrade
    from tanhui.settings import load_settings, use_settings
    from wallet.service import verify_ledger_snapshot

    name = f"tanhui_bench_points_{uuid.uuid4().hex[:8]}"
    url = fresh_database(name)
    settings = load_settings(
        database_url=url,
        secret_key=secrets.token_urlsafe(48),
        data_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    use_settings(settings)
    engine = create_engine(settings)
    try:
        upgrade(engine)
        started = time.perf_counter()
        phones = _phones(RESIDENTS)
        for start in range(0, RESIDENTS, 1000):
            with unit_of_work(engine) as session:
                for phone in phones[start : start + 1000]:
                    residents.register_resident(session, phone=phone)
        with unit_of_work(engine) as session:
            operator = partners.create_partner(
                session, name="Bench bus operator", scenarios=["bus", "metro", "walk", "bike"]
            )
            app = partners.create_partner(
                session, name="Bench MaaS app", scenarios=["bus", "metro", "walk", "bike"]
            )
            senders = [
                (str(operator.partner.id), operator.secret),
                (str(app.partner.id), app.secret),
            ]
        print(
            f"points: {RESIDENTS} residents and 2 partners in {time.perf_counter() - started:.1f} s"
        )
        rng = random.Random(7)
        sequence = 0
        recent: list[dict[str, Any]] = []

        def batch(index: int, per_resident: int) -> tuple[str, str, bytes]:
            """1,000 events: ``per_resident`` of them for each resident drawn."""
            nonlocal sequence
            partner_id, secret = senders[index % 2]
            now = utcnow()
            events: list[dict[str, Any]] = []
            while len(events) < BATCH_SIZE:
                phone = rng.choice(phones)
                for _ in range(min(per_resident, BATCH_SIZE - len(events))):
                    sequence += 1
                    if recent and rng.random() < 0.01:  # the other partner's act, reported again
                        copy = dict(rng.choice(recent))
                        copy["partner_event_id"] = f"ev-{sequence}"
                        events.append(copy)
                        continue
                    events.append(_event(rng, phone, now, sequence))
            recent[:] = events[-200:]
            raw = json.dumps({"events": events}, separators=(",", ":")).encode()
            return partner_id, sign(secret, raw, timestamp=int(now.timestamp())), raw

        warm = max(1, RESIDENTS // 400)
        started = time.perf_counter()
        for index in range(warm):
            partner_id, signature, raw = batch(index, 1)
            ingest.ingest_with_retries(
                engine, partner_ref=partner_id, signature=signature, body=raw
            )
        print(f"points: warm-up {warm} batches in {time.perf_counter() - started:.1f} s")
        rates: dict[str, float] = {}
        for label, per_resident in (("uniform", 1), ("grouped", 4)):
            prepared = [batch(warm + index, per_resident) for index in range(BATCHES)]
            accepted = rejected = 0
            started = time.perf_counter()
            for partner_id, signature, raw in prepared:
                result = ingest.ingest_with_retries(
                    engine, partner_ref=partner_id, signature=signature, body=raw
                )
                accepted += result.accepted
                rejected += result.rejected
            elapsed = time.perf_counter() - started
            events = BATCHES * BATCH_SIZE
            rates[label] = events / elapsed
            print(
                f"points: {label} ({per_resident} event(s) per resident per batch): {events} "
                f"events ({accepted} accepted, {rejected} rejected) in {elapsed:.2f} s = "
                f"{rates[label]:,.0f} events/s"
            )

        if WORKERS > 0:
            label = f"uniform, {WORKERS} processes"
            prepared = [batch(warm + BATCHES + index, 1) for index in range(BATCHES + WORKERS)]
            warmups, measured = prepared[:WORKERS], prepared[WORKERS:]
            assert settings.secret_key is not None and settings.data_key is not None
            events, accepted, rejected, elapsed = _concurrent(
                url,
                settings.secret_key.get_secret_value(),
                settings.data_key.get_secret_value(),
                warmups,
                measured,
            )
            rates[label] = events / elapsed
            print(
                f"points: {label} (1 event per resident per batch, {WORKERS} client processes at "
                f"once): {events} events ({accepted} accepted, {rejected} rejected) in "
                f"{elapsed:.2f} s = {rates[label]:,.0f} events/s"
            )

        with unit_of_work(engine) as session:
            reasons = session.execute(
                text("SELECT reason, count(*) FROM inclusion_rejection GROUP BY reason ORDER BY 1")
            ).all()
        print("points: rejections in all phases: " + ", ".join(f"{r} {n}" for r, n in reasons))
        started = time.perf_counter()
        report = verify_ledger_snapshot(engine)
        print(
            f"points: wallet verify of the whole ledger ({report.entries} entries, "
            f"{report.postings} postings, {report.accounts} accounts): "
            f"{'ok' if report.ok else report.first_fault} in {time.perf_counter() - started:.1f} s"
        )

        copy_rate, copied = _copy_baseline(url)
        print(
            f"points: COPY of {copied} event rows into an unindexed table = {copy_rate:,.0f} rows/s"
        )
        floors = {
            f"{count} connection{'s' if count > 1 else ''}": _floor(url, count)
            for count in sorted({1, max(WORKERS, 1)})
        }
        for label, rate in floors.items():
            ratio = rate / copy_rate if copy_rate else 0.0
            print(
                f"points: floor (only the writes of accepted events: receipt, 2 postings, 2 "
                f"balance rows; no checks; rolled back), {label}: {rate:,.0f} events/s = "
                f"{ratio:.2f}x COPY"
            )
        best = max(floors.values())
        needed = TARGET_RATIO * copy_rate
        print(
            f"points: the targets against the floor: {TARGET_RATIO}x COPY is {needed:,.0f} "
            f"events/s ({'within' if best >= needed else 'beyond'} the best floor, {best:,.0f}); "
            f"{TARGET_RATE:,} events/s is {TARGET_RATE / best:.0%} of it (ingestion adds every "
            "check, lookup and commit to those writes)"
        )
        for label, rate in rates.items():
            ratio = rate / copy_rate if copy_rate else 0.0
            print(
                f"points: {label}: {rate:,.0f} events/s = {ratio:.2f}x COPY (targets: >= "
                f"{TARGET_RATE:,} events/s: {'met' if rate >= TARGET_RATE else 'MISSED'}; "
                f">= {TARGET_RATIO}x COPY: {'met' if ratio >= TARGET_RATIO else 'MISSED'})"
            )
    finally:
        engine.dispose()
        drop_database(name)


def _worker(
    url: str,
    secret_key: str,
    data_key: str,
    warmup: tuple[str, str, bytes],
    batches: list[tuple[str, str, bytes]],
    barrier: Any,
    queue: Any,
) -> None:
    """One client process: ingest ``warmup``, wait for the others, ingest ``batches``."""
    from registry.inclusion.service import ingest
    from tanhui.db import create_engine
    from tanhui.settings import load_settings, use_settings

    settings = load_settings(database_url=url, secret_key=secret_key, data_key=data_key)
    use_settings(settings)
    engine = create_engine(settings)
    partner_id, signature, raw = warmup
    ingest.ingest_with_retries(engine, partner_ref=partner_id, signature=signature, body=raw)
    barrier.wait()
    accepted = rejected = 0
    for partner_id, signature, raw in batches:
        result = ingest.ingest_with_retries(
            engine, partner_ref=partner_id, signature=signature, body=raw
        )
        accepted += result.accepted
        rejected += result.rejected
    queue.put((accepted, rejected, time.perf_counter()))
    engine.dispose()


def _concurrent(
    url: str,
    secret_key: str,
    data_key: str,
    warmups: list[tuple[str, str, bytes]],
    batches: list[tuple[str, str, bytes]],
) -> tuple[int, int, int, float]:
    """``batches`` shared out among ``len(warmups)`` processes; (events, accepted, rejected,
    seconds from the moment all were ready to the last one's end)."""
    context = multiprocessing.get_context("spawn")
    workers = len(warmups)
    barrier = context.Barrier(workers + 1)
    queue = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(url, secret_key, data_key, warmups[n], batches[n::workers], barrier, queue),
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=600)
    started = time.perf_counter()
    outcomes = [queue.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    accepted = sum(outcome[0] for outcome in outcomes)
    rejected = sum(outcome[1] for outcome in outcomes)
    finished = max(outcome[2] for outcome in outcomes)
    return len(batches) * BATCH_SIZE, accepted, rejected, finished - started


def _copy_baseline(url: str) -> tuple[float, int]:
    """COPY the accepted event rows (read back first) into an unindexed copy of the table."""
    import psycopg

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as connection:
        rows = connection.execute("SELECT * FROM inclusion_event").fetchall()
        columns = [
            column.name
            for column in connection.execute("SELECT * FROM inclusion_event LIMIT 0").description
            or []
        ]
        connection.execute("CREATE TABLE bench_copy (LIKE inclusion_event)")
        connection.commit()
        started = time.perf_counter()
        statement = f"COPY bench_copy ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        elapsed = time.perf_counter() - started
    return (len(rows) / elapsed if elapsed else 0.0), len(rows)


def _floor_rows(
    connection: Any, worker: int, workers: int
) -> tuple[list[str], list[tuple[Any, ...]], list[Any]]:
    """Up to 1,000 accepted receipts of different residents (each worker its own residents:
    the floor is not a contest for balance rows), with their POINTS and RED_G account ids."""
    found = connection.execute(
        "SELECT e.*, p.id, g.id FROM (SELECT DISTINCT ON (resident_id) * FROM inclusion_event"
        " WHERE (hashtext(resident_id::text) & 1023) %% %s = %s LIMIT %s) AS e"
        " JOIN wallet_account p ON p.owner = 'resident:' || e.resident_id::text"
        " AND p.asset = 'POINTS' AND p.purpose = 'main'"
        " JOIN wallet_account g ON g.owner = 'resident:' || e.resident_id::text"
        " AND g.asset = 'RED_G' AND g.purpose = 'main'",
        (workers, worker, BATCH_SIZE),
    )
    columns = [column.name for column in found.description or []][:-2]
    rows = found.fetchall()
    return columns, [row[:-2] for row in rows], [(row[-2], row[-1]) for row in rows]


def _floor_worker(
    plain: str, worker: int, workers: int, batches: int, barrier: Any, queue: Any
) -> None:
    """``batches`` times, in one transaction rolled back: a journal entry, COPY of 1,000
    receipts (new ids), COPY of their 2,000 credit postings, one UPDATE of the 2,000 balance
    rows."""
    import psycopg

    from tanhui.db import new_id

    with psycopg.connect(plain) as connection:
        columns, rows, accounts = _floor_rows(connection, worker, workers)
        at = {name: index for index, name in enumerate(columns)}
        connection.rollback()
        barrier.wait()
        started = time.perf_counter()
        for number in range(batches):
            entry = new_id()
            connection.execute(
                "INSERT INTO wallet_entry (id, chain, chain_seq, prev_hash, hash, scope,"
                " request_hash, kind, code, metadata_json, created_at) VALUES"
                " (%s, 32000 + %s, %s, '', '', 'bench-floor', '', 'transfer', 'floor', '{}',"
                " now())",
                (entry, worker, number),
            )
            with connection.cursor() as cursor:
                receipts = f"COPY inclusion_event ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(receipts) as copy:
                    for index, row in enumerate(rows):
                        fresh = list(row)
                        fresh[at["id"]] = new_id()
                        fresh[at["partner_event_id"]] = f"floor-{worker}-{number}-{index}"
                        copy.write_row(fresh)
                postings = (
                    "COPY wallet_posting (entry_id, ordinal, account_id, asset, layer, side,"
                    " amount) FROM STDIN"
                )
                with cursor.copy(postings) as copy:
                    for index, (points, grams) in enumerate(accounts):
                        copy.write_row((entry, 2 * index, points, "POINTS", "posted", "C", 1))
                        copy.write_row((entry, 2 * index + 1, grams, "RED_G", "posted", "C", 1))
                cursor.execute(
                    "UPDATE wallet_balance AS b SET posted_credits = b.posted_credits + 1"
                    " FROM unnest(%s::uuid[]) AS v(a) WHERE b.account_id = v.a AND b.shard = 0",
                    ([account for pair in accounts for account in pair],),
                )
            connection.rollback()
        queue.put((len(rows) * batches, time.perf_counter() - started))


def _floor(url: str, connections: int) -> float:
    """Events/s of the bare writes (see the module's step 7) on ``connections`` at once."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(connections)
    queue = context.Queue()
    batches = max(BATCHES // connections, 5)
    processes = [
        context.Process(target=_floor_worker, args=(plain, n, connections, batches, barrier, queue))
        for n in range(connections)
    ]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    return sum(events for events, _ in outcomes) / max(seconds for _, seconds in outcomes)


if __name__ == "__main__":
    main()
