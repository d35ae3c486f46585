"""The answers to unexpected exceptions: a database refusing a value as data is the request's
fault (400), anything else a 500 that closes the connection."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from signalpost.kit.errors import answer_unexpected, data_error, unexpected_error


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_a_500_closes_the_connection() -> None:
    response = unexpected_error()
    assert response.status_code == 500
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("sqlstate", ["22001", "22021", "22003", "22P02"])
def test_a_data_exception_is_400(sqlstate: str) -> None:
    exc = DBAPIError("INSERT …", {}, DriverError(sqlstate))
    assert data_error(exc) is not None
    response = answer_unexpected(exc, "POST /v2/x")
    assert response.status_code == 400
    assert "connection" not in response.headers


@pytest.mark.parametrize("sqlstate", ["08006", "40001", "57P01"])
def test_other_database_errors_stay_500(sqlstate: str) -> None:
    exc = DBAPIError("SELECT …", {}, DriverError(sqlstate))
    assert data_error(exc) is None
    assert answer_unexpected(exc, "GET /v2/x").status_code == 500
    assert answer_unexpected(RuntimeError("bug"), "GET /v2/x").status_code == 500
