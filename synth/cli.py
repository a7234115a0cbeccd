"""The `synth` command: run a synthesis, list and verify models, export the JSON Schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Traceable synthesis of citizens' assembly and consultation contributions.\n\n"
    "Where things live: models are Python packages (`synth models` lists and verifies them; nothing is "
    "downloaded); the server's database is $SYNTH_DATABASE_URL, else SQLite in $SYNTH_DATA_DIR (default "
    "~/.local/share/synth/synth.db); the embedding cache is $SYNTH_CACHE_DIR (default ~/.cache/synth); the audit "
    "key is $SYNTH_AUDIT_KEY, else ~/.config/synth/audit.key. Start with `synth run FILE --out DIR`, or "
    "`synth create-key --role admin` then `synth serve`.",
    no_args_is_help=True,
)
err = Console(stderr=True)


@app.command("run")
def run_cmd(
    input: Annotated[Path, typer.Argument(help="CSV, JSON, JSONL file, or a Polis export folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for synthesis.json and the reports.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, csv, json, jsonl, polis or sheet (.xlsx, .xls, .ods).")
    ] = "auto",
    id_col: Annotated[list[str] | None, typer.Option(help="Column holding contribution (or respondent) ids.")] = None,
    text_col: Annotated[
        list[str] | None,
        typer.Option(help="Column holding the text; give it once per question column to read a wide file."),
    ] = None,
    group_col: Annotated[list[str] | None, typer.Option(help="Column holding the table / session / group.")] = None,
    participant_col: Annotated[list[str] | None, typer.Option(help="Column holding the participant id.")] = None,
    question_col: Annotated[list[str] | None, typer.Option(help="Column holding the question answered.")] = None,
    attr_cols: Annotated[str | None, typer.Option(help="Comma-separated attribute (stratum) columns.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    config: Annotated[Path | None, typer.Option(help="JSON file of settings (see synth.config).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the embedding cache.")] = False,
    title: Annotated[str | None, typer.Option(help="Report title (default: the input name).")] = None,
    codebook: Annotated[
        Path | None,
        typer.Option(
            help="A codebook (CSV: id,name,description,examples; or JSON): code every passage against it too, "
            "with 'fits none' and 'cannot decide' kept apart and candidate new codes from the rest.",
        ),
    ] = None,
    draft: Annotated[
        bool,
        typer.Option(
            "--draft",
            help="Draft titles and summaries with an LLM (SYNTH_LLM_BASE_URL, SYNTH_LLM_MODEL, SYNTH_LLM_API_KEY); "
            "each drafted sentence is checked against what it cites and dropped if not supported.",
        ),
    ] = False,
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="An earlier run's --out folder: keep its themes (ids, titles, reviewers' edits) and add the "
            "contributions of INPUT it does not have.",
        ),
    ] = None,
) -> None:
    """Synthesise INPUT into OUT/synthesis.json, report.html and report.md."""
    from synth.config import SynthConfig
    from synth.formats import ColumnMap, InputError
    from synth.models import ModelMissingError
    from synth.service.local import synthesize_file, write_outputs

    settings = json.loads(config.read_text()) if config else {}
    settings.setdefault("seed", seed)
    if draft:
        settings["draft"] = True
        from synth.llm import Endpoint, remote_warning

        endpoint = Endpoint.of(SynthConfig(**settings))
        if endpoint is not None and (warning := remote_warning(endpoint)):
            err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)

    def once(option: str, values: list[str] | None) -> str | None:
        """An option that takes one column, given twice, is an error: never a silent choice of the last."""
        if values and len(values) > 1:
            err.print(f"[red]error:[/red] {option} was given {len(values)} times ({', '.join(values)}); give it once")
            raise typer.Exit(2)
        return values[0] if values else None

    texts = tuple(text_col or ())
    columns = ColumnMap(
        id=once("--id-col", id_col),
        text=texts[0] if len(texts) == 1 else None,
        texts=texts if len(texts) > 1 else (),
        participant=once("--participant-col", participant_col),
        group=once("--group-col", group_col),
        question=once("--question-col", question_col),
        attributes=tuple(a.strip() for a in attr_cols.split(",") if a.strip()) if attr_cols else (),
    )
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            result = synthesize_file(
                input, fmt, columns, SynthConfig(**settings), progress, None if no_cache else True, from_, codebook
            )
        except (InputError, ModelMissingError) as exc:
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
    name = input.name if input.name != "comments.csv" else input.resolve().parent.name
    paths = write_outputs(result, out, title or name)
    cov = result.synthesis.coverage
    err.print(
        f"{cov.n_input} contributions: {cov.n_themed} in themes, {cov.n_unassigned} unassigned, "
        f"{cov.n_excluded} excluded; {sum(len(s.minority_views) for s in result.synthesis.sections)} minority views."
    )
    if (drafting := result.synthesis.metadata.drafting) is not None:
        err.print(
            f"Drafting with {drafting.model or 'no model'}: {drafting.kept} drafted texts kept, "
            f"{len(drafting.dropped)} dropped by the checks (reasons in synthesis.json, metadata.drafting).",
            soft_wrap=True,
        )
        for w in drafting.warnings:
            err.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)
    for sec in result.synthesis.sections:
        if (c := sec.coding) is not None:
            coded = len({a.segment_id for a in c.assignments})
            err.print(
                f"Codebook: {coded} passages coded, {len(c.fits_none)} fit no code, {len(c.undecided)} undecided; "
                f"{len(c.candidates)} candidate new codes.",
                soft_wrap=True,
            )
    if result.synthesis.metadata.extends is not None:
        n_new = result.synthesis.metadata.extends.n_new
        proposals = sum(len(s.proposals) for s in result.synthesis.sections)
        err.print(
            f"{n_new} new contributions added to the earlier run; {proposals} split or merge proposals.", soft_wrap=True
        )
    for p in paths.values():
        err.print(f"wrote {p}")


@app.command("export")
def export_cmd(
    synthesis: Annotated[Path, typer.Argument(help="An earlier run's --out folder, or its synthesis.json.")],
    to: Annotated[str, typer.Option("--to", help="tttc, sensemaker, themefinder or kouchou.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the exported files.")],
    title: Annotated[str | None, typer.Option(help="Report title (Talk to the City).")] = None,
) -> None:
    """Write a synthesis in a peer's format: Talk to the City report JSON, Sensemaker categorized CSV and
    report_data.json, themefinder/Consult mapping.jsonl and themes.json, or kouchou-ai hierarchical_result.json."""
    from synth.formats import InputError
    from synth.formats.peers import EXPORTS, export_files
    from synth.service.local import read_synthesis

    if to not in EXPORTS:
        err.print(f"[red]error:[/red] --to must be one of {', '.join(EXPORTS)}, not {to!r}")
        raise typer.Exit(2)
    try:
        s = read_synthesis(synthesis)
    except InputError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, text in export_files(s, to, title or synthesis.resolve().name).items():
        (out / name).write_text(text, encoding="utf-8")
        err.print(f"wrote {out / name}")


@app.command("models")
def models_cmd() -> None:
    """List the models in the manifest and verify the installed weights against it."""
    from synth.models import ModelMissingError, manifest, verify

    table = Table()
    for column in ("model", "package", "version", "licence", "sha256", "status"):
        table.add_column(column, overflow="fold")
    failed = False
    for key, entry in manifest().items():
        try:
            verify(key)
            status = "[green]ok[/green]"
        except ModelMissingError as exc:
            status, failed = f"[red]{exc}[/red]", True
        table.add_row(entry.name, entry.package, entry.version, entry.licence, entry.sha256[:16] + "…", status)
    Console().print(table)
    if failed:
        raise typer.Exit(1)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers_in_process: Annotated[bool, typer.Option(help="Run synthesis jobs in this process.")] = True,
) -> None:
    """Serve the HTTP API (and run queued syntheses). Database: $SYNTH_DATABASE_URL (default: SQLite in
    ~/.local/share/synth)."""
    import uvicorn

    from synth.app import create_app

    # Slow clients (a stalled upload, slowloris) are best cut off by the reverse proxy in front (nginx's
    # client_body_timeout); uvicorn still closes idle keep-alive connections and caps concurrent connections.
    uvicorn.run(
        create_app(run_worker=workers_in_process),
        host=host,
        port=port,
        log_level="info",
        timeout_keep_alive=5,
        limit_concurrency=200,
    )


@app.command("worker")
def worker_cmd(
    stale_after: Annotated[float, typer.Option(help="Seconds without heartbeat before a run counts as stopped.")] = 60,
) -> None:
    """Run queued syntheses from $SYNTH_DATABASE_URL (for `synth serve --no-workers-in-process`); Ctrl-C stops."""
    import threading

    from synth.jobs import Worker
    from synth.store import Database, upgrade

    db = Database()
    upgrade(db.engine)
    stop = threading.Event()
    try:
        Worker(db, stale_after=stale_after).serve(stop)
    except KeyboardInterrupt:
        stop.set()


@app.command("create-key")
def create_key_cmd(
    role: Annotated[str, typer.Option(help="admin, facilitator, reader or platform.")] = "admin",
    project: Annotated[str | None, typer.Option(help="Project id (required unless role is admin).")] = None,
    name: Annotated[str, typer.Option(help="Who holds the key; the audit log names the key by it.")] = "",
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650, help="Default: until revoked.")] = None,
) -> None:
    """Create an API key in $SYNTH_DATABASE_URL and print it (shown once; only its hash is stored)."""
    from synth.service import audit, create_key

    with _database().session() as s:
        try:
            key, plaintext = create_key(s, role, project, name, expires_in_days)
        except ValueError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if project:
            audit(s, project, "command line", "key.create", key.prefix, None, {"role": role, "name": name})
    print(plaintext)


def _database():  # noqa: ANN202 - synth.store.Database
    from synth.store import Database, upgrade

    db = Database()
    upgrade(db.engine)
    return db


@app.command("list-keys")
def list_keys_cmd(
    project: Annotated[str | None, typer.Option(help="Only this project's keys; default: every key.")] = None,
) -> None:
    """List API keys (never their secrets): id, prefix, name, role, project, created, expires, revoked."""
    from rich.table import Table

    from synth.service import repository as repo

    table = Table("id", "prefix", "name", "role", "project", "created", "expires", "revoked")
    with _database().session() as s:
        for k in repo.all_keys(s, project):
            table.add_row(
                k.id,
                k.prefix,
                k.name,
                k.role,
                k.project_id or "(all)",
                f"{k.created_at:%Y-%m-%d}",
                f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
    Console().print(table)


@app.command("revoke-key")
def revoke_key_cmd(key_id: Annotated[str, typer.Argument(help="The key's id (see list-keys).")]) -> None:
    """Revoke a key at once: the API refuses it and browser sessions opened with it end."""
    from synth.store.models import ApiKey, now

    with _database().session() as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            err.print(f"[red]error:[/red] no key {key_id}")
            raise typer.Exit(2)
        if key.project_id:
            from synth.service import revoke_key

            revoke_key(s, key.project_id, key_id, "command line")
        elif key.revoked_at is None:
            key.revoked_at = now()
    print(f"revoked {key_id}")


@app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of synthesis.json."""
    from synth.schema import Synthesis

    json.dump(Synthesis.model_json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    app()
