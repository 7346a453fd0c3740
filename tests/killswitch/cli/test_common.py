"""A database that refuses a write stops a command loudly: a typed error and exit 3, never a
traceback (issue 17: the ledger locked or its disk full mid-run)."""

from __future__ import annotations

import sqlite3

import pytest
import typer

from killswitch.cli.common import EXIT_FAILED, errors_handled


@pytest.mark.parametrize("message", ["database is locked", "database or disk is full"])
def test_a_database_that_refuses_a_write_is_a_storage_error(
    capsys: pytest.CaptureFixture[str], message: str
) -> None:
    with pytest.raises(typer.Exit) as exited, errors_handled(False):
        raise sqlite3.OperationalError(message)
    assert exited.value.exit_code == EXIT_FAILED
    said = capsys.readouterr().err
    assert f"error[storage]: the kill switch's database failed: {message}" in said
    assert "audit verify" in said and "Traceback" not in said
