"""Fixtures of the server tests: one real PostgreSQL cluster per session, a fresh database per test.

Without the PostgreSQL server binaries these tests fail (they are never skipped): the
message names what to install.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from .postgres import ClusterError, PostgresCluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throw-away cluster on a free loopback port, stopped and removed after the session."""
    try:
        cluster = PostgresCluster.start()
    except ClusterError as e:
        pytest.fail(f"cannot start a PostgreSQL cluster for the server tests: {e}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The connection URI of a new, empty database, dropped after the test (connections and all)."""
    with postgres_cluster.database() as dsn:
        yield dsn


@pytest.fixture
def pg_conn(pg_dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's database."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        yield conn
