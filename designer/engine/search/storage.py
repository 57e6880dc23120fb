"""Where a sweep's study lives: an Optuna RDB storage (SQLite beside the project's runs by
default, any RDB URL such as ``postgresql://...`` to share one study between processes), and the
lock that makes the workers of one study together run exactly the trials asked for."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..train.runs import project_stem

DB_NAME = "sweeps.db"


def default_storage(project_path: str | os.PathLike | None, project_name: str = "untitled",
                    base_dir: str | os.PathLike | None = None) -> str:
    """``sqlite:///<project folder>/runs/<project stem>/sweeps.db``."""
    folder = (Path(project_path).resolve().parent if project_path is not None
              else Path(base_dir or ".").resolve())
    return f"sqlite:///{folder / 'runs' / project_stem(project_path, project_name) / DB_NAME}"


def storage_label(url: str) -> str:
    """The URL with its password hidden (what is printed and recorded)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL: say only its scheme
        return url.split("://", 1)[0] + "://..."


class StorageLock:
    """A lock shared by every worker of one study: a file lock beside an SQLite database, an
    advisory lock on PostgreSQL and MySQL. Held only while counting trials and asking for one
    (milliseconds), so that the workers together create exactly the trials asked for."""

    def __init__(self, url: str, study: str) -> None:
        self.url = url
        self.key = zlib.crc32(f"designer-sweep:{study}".encode()) & 0x7FFFFFFF
        self.path: Path | None = None
        self.engine = None
        self._local = threading.Lock()  # threads of one process (flock is per open file)
        scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
        self.scheme = scheme
        if scheme == "sqlite":
            db = url.split("///", 1)[1] if "///" in url else ""
            if db and db != ":memory:":
                self.path = Path(db + ".lock")
                self.path.parent.mkdir(parents=True, exist_ok=True)
        elif scheme in ("postgresql", "mysql", "mariadb"):
            import sqlalchemy  # deferred: sqlalchemy loads only when this runs
            from sqlalchemy.pool import NullPool  # deferred: sqlalchemy loads only when this runs

            self.engine = sqlalchemy.create_engine(url, poolclass=NullPool)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._local:
            if self.path is not None:
                with _file_lock(self.path):
                    yield
            elif self.engine is not None:
                from sqlalchemy import text  # deferred: sqlalchemy loads only when this runs

                with self.engine.connect() as conn:
                    if self.scheme == "postgresql":
                        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
                        try:
                            yield
                        finally:
                            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    else:
                        conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": str(self.key)})
                        try:
                            yield
                        finally:
                            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": str(self.key)})
            else:
                yield

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks a byte range
            import msvcrt

            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.05)
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def open_storage(url: str):
    """An Optuna RDB storage for ``url`` (SQLite waits for a busy database instead of failing)."""
    from optuna.storages import RDBStorage  # deferred: optuna loads only when this runs

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        db = url.split("///", 1)[1] if "///" in url else ""
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    storage = RDBStorage(url, **kwargs)
    if url.startswith("sqlite") and db and db != ":memory:":
        # Write-ahead logging, synced at checkpoints rather than at every commit: each trial
        # commits a handful of small transactions, and an fsync apiece cost ~20 ms a trial.
        # Safe for several processes of one machine (the file lock above orders their asks).
        from sqlalchemy import event  # deferred: sqlalchemy loads only when this runs

        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened while the tables were made
    return storage


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
