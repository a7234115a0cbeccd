"""Request and response bodies: the API contract, as it appears in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from synth.config import SynthConfig
from synth.schema import Summary, Theme, Votes

T = TypeVar("T")


def _no_nul(value: str) -> str:
    """PostgreSQL refuses NUL in text and SQLite keeps it: refused at the door, the same on both."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(Strict):
    name: Text = Field(min_length=1, max_length=200)


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class KeyIn(Strict):
    role: Literal["facilitator", "reader", "platform", "admin"]
    name: Text = Field("", max_length=200, description="Who holds the key; the audit log names the key by it.")
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="None: the key lasts until revoked.")


class KeyInfo(BaseModel):
    id: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    name: str
    role: str
    project_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyOut(KeyInfo):
    key: str = Field(description="Shown once; only its hash is stored.")


class DeletionOut(BaseModel):
    project_id: str
    name: str
    actor: str
    deleted_at: datetime
    counts: dict[str, int]
    audit_seq: int
    audit_head: str


class ContributionIn(Strict):
    id: Text = Field(min_length=1, max_length=200)
    text: Text
    participant_id: Text | None = Field(None, max_length=200)
    group: Text | None = Field(None, max_length=200)
    attributes: dict[Text, Text] = Field(default_factory=dict)
    timestamp: Text | None = Field(None, max_length=100)
    question: Text | None = Field(None, max_length=2000)
    votes: Votes | None = None


class ContributionsIn(Strict):
    contributions: list[ContributionIn] = Field(min_length=1)


class UploadReport(BaseModel):
    received: int
    created: int
    updated: int
    unchanged: int
    excluded: list[dict[str, str]]
    notes: list[str]


class ContributionOut(BaseModel):
    id: str
    text: str
    participant_id: str | None = None
    group: str | None = None
    question: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    excluded_reason: str | None = None


class Page(BaseModel, Generic[T]):
    """One page of a list. Ask for the next with `?cursor=<next_cursor>`; it is null on the last page."""

    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last.")


class MemberOut(BaseModel):
    id: str = Field(description="The contribution's id.")
    text: str


class ThemePage(BaseModel):
    theme: Theme
    summary: Summary | None
    members: Page[MemberOut]


class UnassignedOut(BaseModel):
    segment_id: str
    contribution_id: str
    text: str
    section: int


class ErasureOut(BaseModel):
    contributions: int = Field(description="Contributions erased from the store.")
    runs: int = Field(description="Runs whose snapshot and results were redacted.")
    results: int = Field(description="Result revisions redacted.")
    audit_events: int = Field(description="Earlier audit events whose details quoted the text, redacted.")


class CodeIn(Strict):
    id: str = Field(min_length=1, max_length=100)
    name: Text = Field(min_length=1, max_length=300)
    description: Text = Field("", max_length=2000)
    examples: list[Text] = Field(default_factory=list, max_length=20)


class UploadPreview(BaseModel):
    source: str
    columns: list[str] = Field(description="The file's columns (empty for a Polis export).")
    roles: dict[str, Any] = Field(description="Role -> column(s): text, id, participant, group, question, attributes.")
    n_contributions: int
    n_excluded: int
    excluded: list[dict[str, Any]] = Field(description="The first 20 exclusions, with their reasons.")
    first: list[dict[str, Any]] = Field(description="The first 10 contributions as they would be stored.")
    notes: list[str]


class RunIn(Strict):
    name: Text = Field("", max_length=200, description="What people will call it; default 'Run N'.")
    config: SynthConfig = Field(
        default_factory=SynthConfig, description="Settings to override; every one is bounded (see the schema)."
    )
    from_run_id: str | None = Field(
        None,
        max_length=64,
        description="Incremental run: start from this earlier run of the project, as reviewed. Its themes keep "
        "their ids, titles and every edit; the project's contributions it does not have are added; splits and "
        "merges the new data suggests are listed as proposals.",
    )
    from_revision: int | None = Field(
        None, ge=0, le=2**31 - 1, description="The earlier run's revision to start from; default: its newest."
    )
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="POSTed a signed `run.finished` event when the run ends (see the `webhooks` section); its "
        "host must be on the project's allow-list (PUT .../webhooks).",
    )
    codebook: list[CodeIn] | None = Field(
        None,
        max_length=500,
        description="Deductive coding: code every passage against these themes too ('fits none' and 'cannot "
        "decide' kept apart; candidate new codes from the rest). Result: sections[].coding.",
    )


class RunOut(BaseModel):
    id: str
    warnings: list[str] = Field(
        default_factory=list, description="E.g. drafting sends contributions to a host that is not this machine."
    )
    project_id: str
    status: str
    progress: dict[str, list[int]]
    attempts: int
    cancel_requested: bool = Field(False, description="A cancel was asked for; the worker stops at its next check.")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    callback_url: str | None = None
    redacted: bool = Field(False, description="An erasure masked words in this run's snapshot and results.")
    name: str = ""
    sources: list[str] = Field(default_factory=list, description="The uploads its contributions came from.")


class ThemeBrief(BaseModel):
    id: str
    label: str
    keywords: list[str]
    parent_id: str | None
    n_contributions: int
    n_participants: int
    section: int


class RevisionOut(BaseModel):
    revision: int
    created_at: datetime


class EditOut(BaseModel):
    revision: int
    message: str = Field("", description="What changed, in one sentence.")


class AuditOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    target: str
    before: dict | None
    after: dict | None
    prev_hash: str
    hash: str


class ChainOut(BaseModel):
    intact: bool
    events: int
    first_broken_seq: int | None


class WebhooksIn(Strict):
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        max_length=50, description="`host` or `host:port` a run's callback_url may point at."
    )
    rotate_secret: bool = Field(False, description="Make a new signing secret (the old one stops at once).")


class WebhooksOut(BaseModel):
    allowed_hosts: list[str]
    secret: str | None = Field(
        None, description="The signing secret, shown only when it is made or rotated; verify deliveries with it."
    )


class DeliveryAttempt(BaseModel):
    at: str
    status_code: int | None = None
    error: str | None = None


class DeliveryOut(BaseModel):
    id: str
    event: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[DeliveryAttempt]
    next_at: datetime | None


class RunSummary(BaseModel):
    id: str
    project_id: str
    status: Literal["succeeded", "failed", "cancelled"]
    error: str | None
    finished_at: str


class RunFinished(BaseModel):
    """The body POSTed to a run's callback_url when it ends. Headers: `X-Synth-Event: run.finished`,
    `X-Synth-Delivery: <id>` (the same on a retry), `X-Synth-Signature: sha256=<hex HMAC-SHA256 of the raw
    body with the project's webhook secret>`; answer 2xx, or it is retried after 30 s, 2, 8 and 32 min."""

    event: Literal["run.finished"]
    run: RunSummary
