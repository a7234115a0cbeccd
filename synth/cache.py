"""A small on-disk key-value cache in SQLite, so a re-run does not redo model work.

One file per model (named by its weights' hash), so results of one model are never read for another.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any


def text_key(text: str, salt: str = "") -> str:
    return hashlib.sha256((salt + "\x00" + text).encode("utf-8")).hexdigest()


class Cache:
    """Blobs by key in one table; a None folder makes a cache that stores nothing."""

    def __init__(self, folder: Path | None, model_hash: str, table: str):
        self.conn: sqlite3.Connection | None = None
        self.table = table
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(folder / f"{table}-{model_hash[:16]}.sqlite")
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, v BLOB NOT NULL)")

    def get(self, keys: list[str]) -> dict[str, bytes]:
        if self.conn is None:
            return {}
        found: dict[str, bytes] = {}
        for lo in range(0, len(keys), 500):
            chunk = keys[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT key, v FROM {self.table} WHERE key IN ({marks})", chunk))
        return found

    def put(self, items: dict[str, bytes]) -> None:
        if self.conn is None or not items:
            return
        with self.conn:
            self.conn.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?)", list(items.items()))

    def delete(self, keys: list[str]) -> int:
        """Forget entries (an erasure: nothing derived from erased text stays). Returns how many went."""
        if self.conn is None or not keys:
            return 0
        with self.conn:
            return sum(self.conn.execute(f"DELETE FROM {self.table} WHERE key = ?", (k,)).rowcount for k in keys)


def remembered(cache_dir: Path | None, table: str, parts: list[str], compute: Callable[[], Any]) -> Any:
    """compute() once per distinct input: kept as JSON under the sha256 of `parts` (the function's whole input,
    its version included). For the pure steps a re-run would otherwise repeat (duplicate search, shared names)."""
    if cache_dir is None:
        return compute()
    store = Cache(cache_dir, "v1", table)
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part.encode("utf-8")).digest())
    key = digest.hexdigest()
    found = store.get([key]).get(key)
    if found is not None:
        return json.loads(found)
    value = compute()
    store.put({key: json.dumps(value).encode("utf-8")})
    return json.loads(json.dumps(value))  # the same types whether computed or read back
