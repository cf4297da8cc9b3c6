"""`lookalike serve` and `lookalike keys create|list|revoke` (mounted by cli.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from lookalike import config
from lookalike.progress import console

keys_app = typer.Typer(help="API keys of the HTTP service (stored hashed in the index).", no_args_is_help=True,
                       add_completion=False)
IndexOpt = typer.Option(None, "--index", help="Index directory (default .lookalike, env LOOKALIKE_INDEX).")


def _existing(index: Optional[Path], create: bool = False) -> Path:
    where = config.index_dir(index)
    if not where.is_dir():
        if not create:
            console.print(f"[red]error:[/] no index at {where}: build one with `lookalike index PATH --index {where}`"
                          " (or start an empty one with `lookalike serve --create`)")
            raise typer.Exit(2)
        where.mkdir(parents=True)
    return where


def serve(index: Optional[Path] = IndexOpt,
          host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
          port: int = typer.Option(8000, help="Port."),
          max_upload_mb: float = typer.Option(50.0, help="Largest request body; bigger ones get 413 unread."),
          allow_root: List[Path] = typer.Option([], "--allow-root", help="Server-side folders that index jobs may "
                                                "read (repeatable); none: only uploads."),
          readers: int = typer.Option(4, help="Threads answering searches and reads (one writer thread besides)."),
          rate: float = typer.Option(50.0, help="Requests per second allowed per key (sustained)."),
          burst: int = typer.Option(200, help="Requests allowed at once per key."),
          timeout: float = typer.Option(120.0, help="Seconds a request may take before 504 (use jobs for long work)."),
          create: bool = typer.Option(False, "--create", help="Create the index directory if it is missing."),
          quiet: bool = typer.Option(False, help="No per-request log lines.")):
    """The HTTP service and web UI: REST under /v1, OpenAPI at /docs, the UI at /. Stops cleanly on Ctrl-C/SIGTERM."""
    try:
        import uvicorn

        from lookalike.service import Settings, create_app
    except ImportError as e:
        console.print(f"[red]error:[/] the service needs its packages ({e.name}): pip install 'lookalike[serve]'")
        raise typer.Exit(2)
    where = _existing(index, create)
    for r in allow_root:
        if not r.is_dir():
            console.print(f"[red]error:[/] --allow-root {r}: not a folder")
            raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings = Settings(index=where, max_upload_mb=max_upload_mb, allow_roots=list(allow_root), readers=readers,
                        rate_per_s=rate, rate_burst=burst, request_timeout_s=timeout, log_requests=not quiet)
    app = create_app(settings)
    console.print(f"lookalike service on http://{host}:{port}/ (API docs: /docs) for index {settings.index}")
    # uvicorn handles SIGINT/SIGTERM: stops accepting, finishes requests in flight, then runs the shutdown
    # keep-alive longer than clients hold idle pooled connections: a close racing a reused connection
    # is a failed request on the client side (seen at 5 s, uvicorn's default, under load)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30, timeout_keep_alive=75)


def _store(index: Optional[Path]):
    from lookalike.service.store import ServiceStore

    return ServiceStore(_existing(index))


@keys_app.command("create")
def keys_create(role: str = typer.Option(..., "--role", help="reader | writer | admin"),
                name: Optional[str] = typer.Option(None, "--name", help="Who or what uses the key."),
                index: Optional[Path] = IndexOpt):
    """Create a key and print it (alone, on stdout). It is shown only this once."""
    from lookalike.service import keys as K

    if role not in K.ROLES:
        console.print(f"[red]error:[/] unknown role {role!r}; choose one of: {', '.join(K.ROLES)}")
        raise typer.Exit(2)
    secret, _ = K.create(_store(index), role, name)
    print(secret)


@keys_app.command("list")
def keys_list(index: Optional[Path] = IndexOpt):
    """Keys by id: prefix, role, name, created, revoked (never the key itself)."""
    import datetime as dt

    from lookalike.service import keys as K

    print("id,prefix,role,name,created,revoked")
    for k in K.all_keys(_store(index)):
        created = dt.datetime.fromtimestamp(k.created_at, dt.timezone.utc).isoformat(timespec="seconds")
        print(f"{k.id},{k.prefix},{k.role},{k.name or ''},{created},{'yes' if k.revoked_at else 'no'}")


@keys_app.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="The key's id or prefix (from `keys list`)."),
                index: Optional[Path] = IndexOpt):
    """Revoke a key: requests with it get 401 from then on."""
    from lookalike.service import keys as K

    if not K.revoke(_store(index), key):
        console.print(f"[red]error:[/] no live key {key!r}")
        raise typer.Exit(1)
    console.print(f"revoked {key}")


def mount(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
