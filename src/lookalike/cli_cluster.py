"""`lookalike cluster` (batch clustering, `cluster train`) and `lookalike clusters` (the stored clusters
and their hand edits: rename, merge, split)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lookalike.cli_common import Fmt, IndexOpt, OutOpt, check_out, emit, fail, fmt_opt, open_index
from lookalike.progress import bars, console


def mount(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(clusters_app, name="clusters")


cluster_app = typer.Typer(help="Group the index into clusters of the same picture, background or person.",
                          invoke_without_command=True, add_completion=False)


@cluster_app.callback()
def cluster(ctx: typer.Context,
            by: str = typer.Option("image", "--by", help="image | background | face"),
            threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0,
                                                      help="First-stage threshold (default: the by's own)."),
            refiner: Optional[str] = typer.Option(None, help="default | gcn | none (default: the by's own)."),
            fmt: Fmt = fmt_opt(Fmt.csv), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """Cluster the whole index (batch); `lookalike cluster train` trains the learned refiner."""
    from lookalike.cluster.engine import check_by

    if ctx.invoked_subcommand:
        return
    check_by(by)
    check_out(out, fmt)
    with bars() as b, open_index(index, b) as idx:
        res = idx.cluster(by=by, threshold=threshold, refiner=refiner)
        names = idx.cluster_names(by=by)
    _show_clusters(res, fmt, out, names)


@cluster_app.command("train")
def cluster_train(labels: Path = typer.Argument(..., help="CSV with a path column and a label column (e.g. identities.csv)."),
                  by: str = typer.Option("face", "--by", help="What the labels group (face)."),
                  column: Optional[str] = typer.Option(None, help="Label column (default: the first of identity, group, "
                                                       "background, label, cluster, person, else the second column)."),
                  epochs: int = typer.Option(400, min=1, help="Training epochs."),
                  index: Optional[Path] = IndexOpt):
    """Train the learned (GCN) refiner on labelled groups of indexed files; use it with --refiner gcn."""
    if not labels.is_file():
        fail(f"{labels}: no such file")
    with bars() as b, open_index(index, b) as idx:
        path = idx.train_refiner(labels, by=by, column=column, epochs=epochs)
    console.print(f"wrote {path}")


clusters_app = typer.Typer(help="The stored clusters with sizes and representatives (batch run plus online "
                           "assignments); `clusters rename ID NAME` names one, `clusters merge ID ID...` and "
                           "`clusters split ID PATH...` edit them.", invoke_without_command=True,
                           add_completion=False)


@clusters_app.callback()
def clusters(ctx: typer.Context, by: str = typer.Option("image", "--by", help="image | background | face"),
             fmt: Fmt = fmt_opt(), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """The stored clusters with sizes and representatives (batch run plus online assignments)."""
    from lookalike.cluster.engine import check_by, online_kinds

    if ctx.invoked_subcommand:
        return
    check_by(by)
    check_out(out, fmt)
    with open_index(index) as idx:
        if by not in online_kinds(idx):
            fail(f"this index was never clustered by {by}: run `lookalike cluster --by {by}` "
                 f"(or `lookalike index PATH --cluster {by}`) first", code=1)
        res = idx.clusters(by=by)
        names = idx.cluster_names(by=by)
    _show_clusters(res, fmt, out, names)


@clusters_app.command("rename")
def clusters_rename(cluster_id: int = typer.Argument(..., help="The cluster id (`lookalike clusters`)."),
                    name: str = typer.Argument(..., help="Its name (empty: forget the name)."),
                    by: str = typer.Option("face", "--by", help="image | background | face"),
                    index: Optional[Path] = IndexOpt):
    """Name a cluster (e.g. a person); names show in `clusters` and `cluster` outputs and survive re-clustering
    as long as the cluster keeps its id."""
    with open_index(index) as idx:
        idx.rename_cluster(cluster_id, name, by=by)
    console.print(f"cluster {cluster_id} by {by}: {name or '(no name)'}", highlight=False)


@clusters_app.command("merge")
def clusters_merge(ids: List[int] = typer.Argument(..., help="Two or more cluster ids (`lookalike clusters`)."),
                   by: str = typer.Option("image", "--by", help="image | background | face"),
                   index: Optional[Path] = IndexOpt):
    """Merge clusters into the oldest (smallest) id; the others disappear. A later `cluster` run keeps it."""
    with open_index(index) as idx:
        try:
            target = idx.merge_clusters(ids, by=by)
        except ValueError as e:
            fail(str(e))
    console.print(f"merged {by} clusters {', '.join(map(str, ids))} into {target}", highlight=False)


@clusters_app.command("split")
def clusters_split(cluster_id: int = typer.Argument(..., help="The cluster id (`lookalike clusters`)."),
                   members: List[str] = typer.Argument(..., help="Members to move: PATH, or PATH#FACE for one "
                                                       "face (by face; a bare PATH moves all its faces)."),
                   by: str = typer.Option("image", "--by", help="image | background | face"),
                   index: Optional[Path] = IndexOpt):
    """Move members of a cluster into a new cluster (a fresh id). A later `cluster` run keeps it."""
    chosen: list = []
    for m in members:
        path, sep, face = m.rpartition("#")
        if sep and face.isdigit() and path:
            chosen.append((path, int(face)))
        else:
            chosen.append(m)
    with open_index(index) as idx:
        try:
            new = idx.split_cluster(cluster_id, chosen, by=by)
        except ValueError as e:
            fail(str(e))
    console.print(f"moved {len(members)} member(s) of {by} cluster {cluster_id} into new cluster {new}", highlight=False)


def _show_clusters(res, fmt: Fmt, out: Optional[Path], names: dict[int, str]) -> None:
    def table() -> str:
        multi = [c for c in res.clusters if c.size > 1]
        lines = [f"{len(res.clusters)} clusters by {res.by} ({len(multi)} with 2+ members)"]
        for c in multi:
            path, face = c.representative
            lines.append(f"  cluster {c.id:>5}  size {c.size:>4}  representative {path}"
                         + (f" (face {face})" if res.by == "face" else "") + (f"  name {names[c.id]}" if c.id in names else ""))
        return "\n".join(lines) + "\n"

    def page() -> str:
        from lookalike.reports.gallery import cluster_gallery_html

        return cluster_gallery_html(res, names=names, min_size=2)

    data = res.to_json()
    for d in data:
        d["name"] = names.get(d["cluster"])
    emit(fmt, out, header=["path", "face", "cluster"], rows=res.rows(), data=data, table=table, html=page)
