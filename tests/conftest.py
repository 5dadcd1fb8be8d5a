"""Fixtures every test folder may use: a throwaway PostgreSQL cluster for the session (see
:mod:`tests.postgres`), and a fresh database in it per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from tests.postgres import REQUIRED_VARIABLE, PostgresCluster, PostgresUnavailableError, running_cluster

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Started on first use, stopped and removed at the end of the session. Without PostgreSQL the tests
    that need it are skipped, saying why (an error instead where CI sets DCS_BOT_REQUIRE_POSTGRES)."""
    try:
        cluster_context = running_cluster()
        cluster = cluster_context.__enter__()
    except PostgresUnavailableError as error:
        if os.environ.get(REQUIRED_VARIABLE):
            pytest.fail(f"PostgreSQL is required here ({REQUIRED_VARIABLE}): {error}")
        pytest.skip(f"no PostgreSQL: {error}")
    try:
        yield cluster
    finally:
        cluster_context.__exit__(None, None, None)


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    yield postgres_cluster.create_database(name)
    postgres_cluster.drop_database(name)
