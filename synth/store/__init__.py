"""The database: engine and sessions from SYNTH_DATABASE_URL, schema managed by Alembic migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def default_data_dir() -> Path:
    """Where a server keeps its SQLite database by default: ``$SYNTH_DATA_DIR``, else ``$XDG_DATA_HOME/synth``,
    else ``~/.local/share/synth`` (never the folder the command happened to start in)."""
    if os.environ.get("SYNTH_DATA_DIR"):
        return Path(os.environ["SYNTH_DATA_DIR"])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "synth"


def database_url() -> str:
    """$SYNTH_DATABASE_URL (sqlite:///path or postgresql://...), else SQLite in default_data_dir()."""
    if os.environ.get("SYNTH_DATABASE_URL"):
        return os.environ["SYNTH_DATABASE_URL"]
    folder = default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'synth.db'}"


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record) -> None:  # noqa: ANN001 - DB-API connection
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # cascades on delete
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the worker's writes
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """An engine and its session factory; one per app or worker."""

    def __init__(self, url: str | None = None):
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s, s.begin():
            yield s
