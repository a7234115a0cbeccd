"""The service layer: what every door calls. The CLI (synth.cli), the HTTP API (synth.api) and the review
pages (synth.web) are thin shells over these functions; none of them queries the database or runs a stage
itself.

- `local`: synthesise a file on disk and write the outputs (the CLI's `synth run`).
- `access`: API keys, browser sessions, and the Caller a request acts as.
- `projects`: projects, contributions and the server's limits; `erasure`: removing a participant's words.
- `runs`: queue, cancel and delete runs (synth.jobs runs them).
- `results`: read results and their revisions; apply review edits (synth.edits) as new revisions.
- `audit`: the hash-chained audit trail.
- `repository`: every query, in one place.
- `errors`: the domain errors every door maps the same way.
"""

from synth.service.access import (
    CAN,
    ROLES,
    Caller,
    authenticate,
    authenticate_caller,
    create_key,
    end_session,
    hash_key,
    revoke_key,
    rotate_key,
    session_key,
    start_session,
)
from synth.service.audit import audit, audit_events, verify_chain
from synth.service.erasure import erase
from synth.service.errors import Conflict, EditError, InputError, Invalid, NotFound, TooLarge
from synth.service.projects import (
    DEFAULT_LIMITS,
    Limits,
    add_contributions,
    check_upload,
    create_project,
    delete_project,
)
from synth.service.results import get_result, load_result, report_title, review, revisions
from synth.service.runs import cancel_run, delete_run, earlier_result, snapshot_input, start_run

__all__ = [
    "CAN",
    "DEFAULT_LIMITS",
    "ROLES",
    "Caller",
    "Conflict",
    "EditError",
    "InputError",
    "Invalid",
    "Limits",
    "NotFound",
    "TooLarge",
    "add_contributions",
    "audit",
    "audit_events",
    "authenticate",
    "authenticate_caller",
    "cancel_run",
    "check_upload",
    "create_key",
    "create_project",
    "delete_project",
    "delete_run",
    "earlier_result",
    "end_session",
    "erase",
    "get_result",
    "hash_key",
    "load_result",
    "report_title",
    "review",
    "revisions",
    "revoke_key",
    "rotate_key",
    "session_key",
    "snapshot_input",
    "start_run",
    "start_session",
    "verify_chain",
]
