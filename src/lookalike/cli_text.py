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
def train_pairs_cmd(views: int = typer.Option(2, help="Augmented shots made of each photo."),
                    epochs: int = typer.Option(200, help="Training epochs."),
                    max_photos: int = typer.Option(2000, help="Photos of the index used at most."),
                    index: Optional[Path] = IndexOpt):
    """Self-supervised background pair head (Siamese, on the masked background descriptor) from the index's
    own photos: other crops, light and pasted people = same background; other photos = other background."""
    from lookalike.api import Index
    from lookalike.heads.pairs import train_pairs

    try:
        with bars() as b, Index.open(index, progress=b) as idx:
            path, rep = train_pairs(idx, views=views, epochs=epochs, max_photos=max_photos,
                                    progress=b("Making views") if b else None)
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        _fail(str(e))
    console.print(f"trained on {rep['items']} items ({rep['photos']} photos and their views): views "
                  f"{rep['view_seconds']} s, training {rep['train_seconds']} s, final loss {rep['final_loss']}")
    console.print(f"wrote {path}")
