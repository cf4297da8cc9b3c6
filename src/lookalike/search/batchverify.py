"""Verifying many copy candidates on every core.

`dedup` verifies thousands of candidate pairs (SIFT matching + RANSAC, ~3-6 ms each), most of the copy
mode's time. They run in worker processes that inherit the features by fork (nothing is pickled but
the pairs and their scores), or in threads where forking is not safe (see lookalike.parallel: the
matching's BLAS product and OpenCV release the GIL, so threads still overlap). Small jobs run inline.

Pairs go in rounds, in the caller's order: a pair whose two files earlier rounds already put in one
copy group is skipped (the closure holds it), so the work and the result depend on the round size,
never on the number of workers or on timing. A worker that dies (killed, out of memory, a crash in
native code) does not end the run: its round is verified again pair by pair, and a pair that kills
its process again is reported unverified with the reason.
"""

from __future__ import annotations

from typing import Callable, Iterator

ROUND = 256  # pairs per round: the skip test runs between rounds
CHUNK = 16  # pairs per task
MIN_PARALLEL = 2 * ROUND  # fewer pairs than this run inline (a pool costs more than it saves)

_SHARED: dict = {}  # the features, set before the workers fork (they inherit it)


def _score_pair(local: dict, thumbs: dict, a: int, b: int, mirror: bool = True):
    """(score, details), and the Verification when the score asks for colour thumbnails (a pair whose
    aligned pixels disagree in one patch: CopyMode rescores it once they are computed), else None."""
    from lookalike.search.copy import copy_score
    from lookalike.search.verify import verify

    v = verify(local[a], local[b], mirror=mirror)
    asked: list = []
    sd = copy_score(v, thumbs.get(a), thumbs.get(b), local[a], local[b], lambda: asked.append(1))
    return sd, (v if asked else None)


def _score_chunk(pairs: list[tuple[int, int]]) -> list:
    local, thumbs, plain = _SHARED["local"], _SHARED["thumbs"], _SHARED["plain_only"]
    return [_score_pair(local, thumbs, a, b, (a, b) not in plain) for a, b in pairs]


def score_pairs(pairs: list[tuple[int, int]], local: dict, thumbs: dict, *, skip: Callable[[int, int], bool],
                done: Callable[[tuple[int, int], tuple, object], None], workers: int | None = None,
                plain_only: set | None = None) -> None:
    """Verify and copy-score `pairs` in order; skip(a, b) is asked for each pair when its round starts;
    done((a, b), (score, details), verification-or-None) is called for each verified pair, in order;
    pairs in plain_only are not matched mirrored."""
    from lookalike import config

    workers = workers or config.workers()
    plain_only = plain_only or set()
    if workers <= 1 or len(pairs) < MIN_PARALLEL:
        for r in _rounds(pairs, skip):
            for p in r:
                done(p, *_score_pair(local, thumbs, *p, p not in plain_only))
        return
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from lookalike.parallel import pool_context

    _SHARED.update(local=local, thumbs=thumbs, plain_only=plain_only)
    ctx = pool_context()
    forked = ctx.get_start_method() == "fork"
    pool = None
    try:
        for r in _rounds(pairs, skip):
            chunks = [r[i: i + CHUNK] for i in range(0, len(r), CHUNK)]
            if pool is None:
                pool = (ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) if forked
                        else ThreadPoolExecutor(workers))
            try:
                results = [x for part in pool.map(_score_chunk, chunks) for x in part]
            except BrokenProcessPool:  # a worker died (killed, out of memory, a crash in native code)
                pool.shutdown(cancel_futures=True)  # its threads gone, the retry may fork again
                pool = None
                results = _recover(r, workers)
            for p, res in zip(r, results):
                done(p, *res)
    finally:
        if pool is not None:
            pool.shutdown()
        _SHARED.clear()


def _recover(pairs: list, workers: int) -> list:
    """A round whose pool broke, again pair by pair: a pair that kills its process a second time is
    reported unverified (score 0, with the reason) and the others are scored as usual."""
    from lookalike.parallel import imap, pool_context

    if pool_context().get_start_method() != "fork":  # spawned workers would not inherit the features
        return [_score_one(p) for p in pairs]

    def crashed(pair):
        return (0.0, {"error": "verification crashed its worker process"}), None

    return list(imap(_score_one, pairs, workers=workers, initializer=_init_worker, on_crash=crashed))


def _score_one(pair: tuple) -> tuple:
    return _score_chunk([pair])[0]


def _rounds(pairs: list[tuple[int, int]], skip: Callable[[int, int], bool]) -> Iterator[list[tuple[int, int]]]:
    i = 0
    while i < len(pairs):
        part = [p for p in pairs[i: i + ROUND] if not skip(*p)]
        i += ROUND
        if part:
            yield part


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to report
