"""What only PostgreSQL raises: URLs and schemas, and writers racing on the same new series.

The store's whole suite (samples, records, writer) also runs on PostgreSQL
through the ``store_url`` fixture of ``conftest.py``.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from secperf.model import Sample
from secperf.store import Store, StoreTargetError
from secperf.store.engine import resolve_url
from secperf.store.schema import series

T0 = 1_700_000_000_000


def test_plain_postgresql_urls_get_the_psycopg_driver() -> None:
    url = resolve_url("postgresql://root@127.0.0.1:5432/test")
    assert url.drivername == "postgresql+psycopg"
    with pytest.raises(StoreTargetError, match="schema"):
        resolve_url("postgresql://root@127.0.0.1/test?schema=a;drop")


def test_the_store_lives_in_its_schema(postgres_url: str) -> None:
    with Store.open(postgres_url) as store:
        assert store.dialect == "postgresql"
        store.write_samples([Sample("m", {"host": "a"}, T0, 1.0)], now_ms=T0)
        with store.engine.connect() as conn:
            schema = conn.exec_driver_sql("select current_schema()").scalar()
        assert schema is not None and postgres_url.endswith(f"schema={schema}")
    with Store.open(postgres_url) as again:  # reopening migrates nothing and finds the data
        assert again.latest("m")[0].value == 1.0


def test_concurrent_writers_creating_the_same_series_do_not_fail(postgres_url: str) -> None:
    Store.open(postgres_url).close()  # schema and tables first
    stores = [Store.open(postgres_url) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def write(i: int, store: Store) -> None:
        batch = [Sample("race", {"host": "h", "k": str(k)}, T0 + i, float(i)) for k in range(200)]
        start.wait()
        try:
            result = store.write_samples(batch, now_ms=T0 + 10)
            assert result.accepted == 200
        except BaseException as exc:  # reported below with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        with stores[0].engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(series)).scalar_one() == 200
        points = stores[0].query("race", {"k": "7"}, T0, T0 + 10)
        assert points[0].timestamps.tolist() == [T0, T0 + 1, T0 + 2, T0 + 3]
    finally:
        for s in stores:
            s.close()
