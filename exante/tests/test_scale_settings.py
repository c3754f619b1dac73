"""Database settings for PgBouncer and a read replica, read from the environment.

Each case runs in a fresh interpreter because settings are fixed once Django starts.
"""

import json
import os
import subprocess
import sys

from exante.tests.conftest import ROOT

_PRINT = """
import json
from exante.settings import base
print(json.dumps({alias: {key: db.get(key) for key in
    ("HOST", "PORT", "NAME", "OPTIONS", "DISABLE_SERVER_SIDE_CURSORS", "TEST")}
    for alias, db in base.DATABASES.items()}))
"""


def databases(tmp_path, **env) -> dict:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DB_")}
    clean.pop("DATABASE_URL", None)
    clean.pop("DATABASE_REPLICA_URL", None)
    clean.update(EXANTE_VAR_DIR=str(tmp_path), STATIC_ROOT=str(tmp_path / "static"), **env)
    result = subprocess.run(
        [sys.executable, "-c", _PRINT], env=clean, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PRIMARY = "postgres://app@db.internal:6432/exante"


def test_behind_pgbouncer_no_session_state_is_asked_of_the_server(tmp_path):
    default = databases(tmp_path, DATABASE_URL=PRIMARY, DB_PGBOUNCER="true")["default"]
    assert default["OPTIONS"] == {
        "connect_timeout": 5,
        "server_side_binding": True,
        "prepare_threshold": None,
    }
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True


def test_without_pgbouncer_the_timeouts_travel_with_the_connection(tmp_path):
    default = databases(tmp_path, DATABASE_URL=PRIMARY)["default"]
    assert default["OPTIONS"] == {
        "connect_timeout": 5,
        "server_side_binding": True,
        "prepare_threshold": 5,
        "options": "-c statement_timeout=30000 -c lock_timeout=0",
    }
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is False


def test_a_replica_url_adds_the_replica_alias_with_the_primarys_options(tmp_path):
    found = databases(
        tmp_path,
        DATABASE_URL=PRIMARY,
        DATABASE_REPLICA_URL="postgres://app@replica.internal:5432/exante",
    )
    assert set(found) == {"default", "replica"}
    replica = found["replica"]
    assert (replica["HOST"], replica["PORT"], replica["NAME"]) == (
        "replica.internal",
        5432,
        "exante",
    )
    assert replica["OPTIONS"] == found["default"]["OPTIONS"]
    assert replica["TEST"] == {"MIRROR": "default"}


def test_without_a_replica_url_there_is_one_database(tmp_path):
    assert set(databases(tmp_path, DATABASE_URL=PRIMARY)) == {"default"}


def test_prepared_statements_can_be_turned_off(tmp_path):
    default = databases(tmp_path, DATABASE_URL=PRIMARY, DB_PREPARE_THRESHOLD="0")["default"]
    assert default["OPTIONS"]["prepare_threshold"] is None
