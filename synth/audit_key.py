"""The server's audit key: it anchors every project's audit chain outside the database.

The hash chain alone shows an altered or removed middle event, but someone who can write the database could
delete the newest events, or rewrite an event and recompute every hash after it, and the chain would still check
out. Each event's hash and each project's head are therefore also MACed with a key the database does not hold.

The key is `SYNTH_AUDIT_KEY` (any string; set the same value on every server and worker), else the file
`SYNTH_AUDIT_KEY_FILE`, else `~/.config/synth/audit.key`, created on first use with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import cache
from pathlib import Path


def _key_file() -> Path:
    if os.environ.get("SYNTH_AUDIT_KEY_FILE"):
        return Path(os.environ["SYNTH_AUDIT_KEY_FILE"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "synth" / "audit.key"


@cache
def audit_key() -> bytes:
    if os.environ.get("SYNTH_AUDIT_KEY"):
        return os.environ["SYNTH_AUDIT_KEY"].encode()
    path = _key_file()
    if not path.exists():
        _create(path)
    key = path.read_text().strip().encode()
    if not key:
        raise RuntimeError(f"the audit key file {path} is empty; restore it or set SYNTH_AUDIT_KEY")
    return key


def _create(path: Path) -> None:
    """Write the new key in full to a private temporary file, then link it into place: a process starting at
    the same moment either finds no file or the whole key, never an empty one; the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: use theirs
        pass
    finally:
        tmp.unlink()


def _mac(message: str) -> str:
    return hmac.new(audit_key(), message.encode(), hashlib.sha256).hexdigest()


def event_mac(event_hash: str) -> str:
    return _mac(f"event:{event_hash}")


def head_mac(project_id: str, seq: int, head_hash: str) -> str:
    return _mac(f"head:{project_id}:{seq}:{head_hash}")


def same(a: str | None, b: str) -> bool:
    """Constant-time comparison, so a MAC cannot be guessed byte by byte from response times."""
    return a is not None and hmac.compare_digest(a, b)
