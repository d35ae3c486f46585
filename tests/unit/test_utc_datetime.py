"""`UTCDateTime` on SQLite: integer microseconds since 1970, read back aware in UTC (also the text
form written before migration 0006), and ordered correctly by SQL comparisons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.dialects import sqlite

from signalpost.kit.clock import iso
from signalpost.kit.db import UTCDateTime


def test_sqlite_stored_form_is_microseconds_since_1970() -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    assert ours is not None
    naive = datetime(2021, 3, 15, 12, 5, 57)
    assert ours(naive) == 1615809957_000000
    assert ours(naive.replace(tzinfo=UTC, microsecond=105542)) == 1615809957_105542
    plus_two = datetime(2021, 3, 15, 14, 5, 57, 1, tzinfo=timezone(timedelta(hours=2)))
    assert ours(plus_two) == 1615809957_000001
    assert ours(datetime(1969, 12, 31, 23, 59, 59, 999999)) == -1
    assert ours(None) is None


def test_round_trip_and_ordering_on_sqlite() -> None:
    meta = MetaData()
    t = Table("t", meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values = [base, base + timedelta(microseconds=1), base + timedelta(seconds=1), None]
    with engine.begin() as conn:
        conn.execute(insert(t), [{"id": i, "at": v} for i, v in enumerate(values)])
        later = conn.execute(select(t.c.id).where(t.c.at > base).order_by(t.c.at)).scalars().all()
        # A value stored as text (before migration 0006, no microseconds) reads back too.
        conn.execute(text("INSERT INTO t (id, at) VALUES (9, '2026-01-02 03:04:05')"))
        # And one written with an offset, by something else, reads back in UTC.
        conn.execute(text("INSERT INTO t (id, at) VALUES (10, '2026-01-02 05:04:05+02:00')"))
        rows = dict(conn.execute(select(t.c.id, t.c.at)).all())
    assert [rows[i] for i in range(4)] == values
    assert (
        rows[9] == base == rows[10]
        and rows[10].tzinfo is UTC
        and rows[0] is not None
        and rows[0].tzinfo is not None
    )
    assert later == [1, 2]


def test_wire_form() -> None:
    assert iso(datetime(2019, 1, 23, 18, 10, 2, 574999, tzinfo=UTC)) == "2019-01-23T18:10:02.574Z"
    assert iso(datetime(2019, 1, 23, 20, 10, 2, tzinfo=timezone(timedelta(hours=2)))) == (
        "2019-01-23T18:10:02.000Z"
    )
    assert iso(datetime(2019, 1, 23, 18, 10, 2)) == "2019-01-23T18:10:02.000Z"  # naive: UTC
    assert iso(None) is None
