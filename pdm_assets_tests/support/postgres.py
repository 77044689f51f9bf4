"""A throwaway PostgreSQL for the tests that run Dagster and MLflow on Postgres (docs/scaling.md).

Debian's server binaries (package `postgresql`), one cluster per test session in a temporary folder,
listening on a free loopback port and trusting local connections. The top conftest.py turns it into the session
fixture `postgres_cluster`; each test asks it for a fresh database.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pdm_assets_tests.support.capabilities import missing, require
from pdm_assets_tests.support.processes import free_port

USER = "pdm"


def postgres_bin(name: str) -> str:
    """A PostgreSQL server binary (not on PATH on Debian), or a skip naming the package."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    require("postgres", found is not None,
            f"PostgreSQL server binaries ({name}) are not installed (Debian package postgresql)")
    assert found is not None
    return found


@dataclass
class PostgresCluster:
    """A running cluster: where it listens and how to reach it with psql."""

    port: int
    psql: str
    host: str = "127.0.0.1"
    user: str = USER
    _names: Iterator[int] = field(default_factory=itertools.count)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run([self.psql, "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database,
                               "-tAc", statement], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise AssertionError(f"psql {statement!r}: {done.stderr}")
        return done.stdout

    def new_database(self, prefix: str) -> str:
        """A database no other test has touched (the cluster lives for the whole session); its URL."""
        name = f"{prefix}_{next(self._names)}"
        self.sql(f"create database {name}")
        return self.url(name)


def _run_as() -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the `postgres` system user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing("postgres", "running as root and there is no `postgres` user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


@contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """initdb + pg_ctl start in a fresh folder, pg_ctl stop and removal afterwards."""
    initdb, pg_ctl, psql = postgres_bin("initdb"), postgres_bin("pg_ctl"), postgres_bin("psql")
    as_user = _run_as()
    # Under /tmp rather than pytest's tmp_path: the `postgres` user cannot enter root's 0700 pytest folders.
    folder = Path(tempfile.mkdtemp(prefix="pdm-pg-"))
    if as_user:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, log = folder / "data", folder / "postgres.log"
    cluster = PostgresCluster(port=free_port(), psql=psql)
    started = False
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        options = f"-h {cluster.host} -p {cluster.port} -k {folder}"
        start = subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                                "start"], capture_output=True, text=True, timeout=90, check=False)
        if start.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise AssertionError(f"pg_ctl start exited {start.returncode}: {start.stderr}\n{tail}")
        started = True
        assert cluster.sql("select 1").strip() == "1"
        yield cluster
    finally:
        # immediate: no shutdown checkpoint, the folder is deleted anyway
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True,
                           timeout=90, check=False)
        shutil.rmtree(folder, ignore_errors=True)
