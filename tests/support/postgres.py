"""A throwaway PostgreSQL server for the suite: initdb in a temporary directory, on a loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class TempPostgres:
    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql")
        self.pg_ctl = pg_ctl
        self.dir = tempfile.mkdtemp(prefix="kleis-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        subprocess.run(
            _as_postgres([initdb, "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync"]), check=True, capture_output=True
        )
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -h 127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            _as_postgres([self.pg_ctl, "-D", f"{self.dir}/data", "-o", options, "-l", f"{self.dir}/log", "-w", "start"]),
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        """What `pg_ctl restart -m fast` does (every open connection is closed by the server), as a stop and a start:
        pg_ctl's own restart hands the new server our captured output, which then never closes."""
        self.pause()
        self.start()

    def pause(self) -> None:
        """Stop the server (fast) until `start`: connections close, new ones are refused."""
        subprocess.run(_as_postgres([self.pg_ctl, "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop"]), check=True, capture_output=True)

    def new_database(self) -> str:
        import psycopg2

        name = f"kleis_{uuid.uuid4().hex[:10]}"
        con = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        con.autocommit = True
        con.cursor().execute(f"CREATE DATABASE {name}")
        con.close()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(_as_postgres([self.pg_ctl, "-D", f"{self.dir}/data", "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
