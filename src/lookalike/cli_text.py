"""`lookalike train ...` and the text side of `lookalike search` (mounted by cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from lookalike.errors import LookalikeError
from lookalike.progress import bars, console

train_app = typer.Typer(help="Train heads on your own data (torch on CPU, numpy weights stored in the index).",
                        no_args_is_help=True, add_completion=False)
IndexOpt = typer.Option(None, "--index", help="Index directory (default .lookalike, env LOOKALIKE_INDEX).")


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/] {escape(msg)}")
    raise typer.Exit(2)


@train_app.command("text")
def train_text_cmd(captions: Path = typer.Argument(..., help="CSV with path,caption rows (extra columns ignored; "
                                                   "with a split column only 'train' rows are used)."),
                   epochs: Optional[int] = typer.Option(None, help="Training epochs (default 30; the best on a "
                                                        "held-out 10% of the images is kept)."),
                   index: Optional[Path] = IndexOpt):
    """Index the captioned images and train the image-text head used by `search --text` and --mode text-guided."""
    from lookalike.api import Index
    from lookalike.text.train import train_text

    try:
        with bars() as b, Index.open(index, progress=b) as idx:
            rep = train_text(idx, captions, epochs=epochs, log=lambda m: console.print(f"  {escape(m)}"))
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        _fail(str(e))
    for p in rep.problems[:20]:
        console.print(f"  [yellow]skipped[/] {escape(p)}")
    if len(rep.problems) > 20:
        console.print(f"  ... and {len(rep.problems) - 20} more rows skipped")
    r = rep.report
    held = r.get("held_out", {})
    console.print(f"trained on {r['rows_used']} captions of {r['images']} images in {r['train_seconds']} s "
                  f"({r['epochs']} epochs, final loss {r['final_loss']}); held-out {held.get('images', 0)} images: "
                  f"Recall@1/5/10 {held.get('recall@1', '-')}/{held.get('recall@5', '-')}/{held.get('recall@10', '-')}")
    console.print(f"wrote {rep.path}")


def read_text_queries(texts: List[str], text_file: Optional[Path]) -> list[str]:
    """--text values then the lines of --text-file (blank lines skipped)."""
    out = [t for t in texts]
    if text_file is not None:
        try:
            lines = text_file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"{text_file}: cannot read ({getattr(e, 'strerror', None) or e})")
        out += [ln.strip() for ln in lines if ln.strip()]
    if not out:
        _fail("no text query: give --text TEXT or a non-empty --text-file")
    return out


def text_results(idx, texts: List[str], text_file: Optional[Path], *, k: int, min_score: float):
    """Results of text queries, in the shape of image search results (query = the text)."""
    from lookalike.text.search import TextSearcher

    queries = read_text_queries(texts, text_file)
    try:
        searcher = TextSearcher(idx)
        if searcher.notice:
            console.print(f"[yellow]note:[/] {escape(searcher.notice)}")
        return searcher.search(queries, k=k, min_score=min_score)
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        _fail(str(e))


@train_app.command("pairs")
def train_pairs_cmd(pairs: Optional[Path] = typer.Option(None, "--pairs", help="Labelled pairs CSV: rows "
                                                         "path_a,path_b,same (0/1); without it, self-supervised "
                                                         "from the index's own photos."),
                    views: int = typer.Option(2, help="Augmented shots made of each photo (self-supervised)."),
                    epochs: Optional[int] = typer.Option(None, help="Training epochs (default 200 self-supervised, "
                                                         "100 labelled, the best on held-out images kept)."),
                    max_photos: int = typer.Option(2000, help="Photos of the index used at most (self-supervised)."),
                    use: Optional[bool] = typer.Option(None, "--use/--no-use", help="Make `--mode background` "
                                                       "(search, dedup, cluster) use the head in this index, or not "
                                                       "(default: on after self-supervised training, which beat the "
                                                       "untrained pipeline on the DEV set; unchanged after --pairs, "
                                                       "which did not)."),
                    index: Optional[Path] = IndexOpt):
    """Background pair head (Siamese, on the masked background descriptor): self-supervised from the index's
    own photos (other crops, light and pasted people = same background; other photos = other background), or
    from labelled pairs with --pairs. `--use` switches background search to it."""
    from lookalike.api import Index
    from lookalike.heads.pairs import SETTING, train_pairs

    problems: list[str] = []
    try:
        with bars() as b, Index.open(index, progress=b) as idx:
            if pairs is not None:
                from lookalike.heads.labelled import train_labelled

                path, rep, problems = train_labelled(idx, pairs, epochs=epochs or 100)
            else:
                path, rep = train_pairs(idx, views=views, epochs=epochs or 200, max_photos=max_photos,
                                        progress=b("Making views") if b else None)
            if use is None and pairs is None:
                use = True
            if use is not None:
                idx.catalog.set_meta(SETTING, "on" if use else "off")
            setting = idx.catalog.get_meta(SETTING) or "off"
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        for p in problems:
            console.print(f"  [yellow]skipped[/] {escape(p)}")
        _fail(str(e))
    for p in problems:
        console.print(f"  [yellow]skipped[/] {escape(p)}")
    if pairs is not None:
        held = rep.get("held_out") or {}
        console.print(f"trained on {rep['pairs']} labelled pairs ({rep['same']} same) of {rep['images']} images in "
                      f"{rep['train_seconds']} s; held-out {held.get('pairs', 0)} pairs: ROC AUC head "
                      f"{held.get('auc_head', '-')} vs raw descriptor {held.get('auc_raw', '-')}")
    else:
        console.print(f"trained on {rep['items']} items ({rep['photos']} photos and their views): views "
                      f"{rep['view_seconds']} s, training {rep['train_seconds']} s, final loss {rep['final_loss']}")
    console.print(f"wrote {path}; background search uses it: {setting} (change with --use / --no-use)")


@train_app.command("vae")
def train_vae_cmd(epochs: int = typer.Option(60, help="Training epochs."), index: Optional[Path] = IndexOpt):
    """Small convolutional auto-encoder on the index's masked backgrounds (person filled in); its 64-d
    bottleneck becomes the `bg_vae` feature, to fuse with others (features.vae.fused_values, e.g.
    bg_cnn+bg_vae; `python benchmarks/bench_vae.py --fuse bg_cnn+bg_vae` measures it)."""
    from lookalike.api import Index
    from lookalike.features.vae import train_vae

    try:
        with bars() as b, Index.open(index, progress=b) as idx:
            path, rep = train_vae(idx, epochs=epochs)
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        _fail(str(e))
    console.print(f"trained on {rep['images']} masked backgrounds in {rep['train_seconds']} s ({rep['epochs']} "
                  f"epochs, final loss {rep['history'][-1]['loss']}; inputs {rep['prepare_seconds']} s)")
    console.print(f"wrote {path} and the bg_vae feature of every indexed photo")
