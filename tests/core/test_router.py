"""axis.router without a broker: which database errors are waited out."""

from __future__ import annotations

import sqlalchemy.exc

from axis.router import database_unavailable


def test_an_outage_is_waited_out() -> None:
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))
    assert database_unavailable(lost)
    assert database_unavailable(sqlalchemy.exc.TimeoutError("pool exhausted"))


def test_data_the_database_refuses_is_not_an_outage() -> None:
    assert not database_unavailable(sqlalchemy.exc.DataError("INSERT", {}, ValueError()))
    assert not database_unavailable(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError()))
    assert not database_unavailable(RuntimeError("a bug"))
