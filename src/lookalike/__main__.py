"""The `lookalike` command (and `python -m lookalike`).

`lookalike hash FILE...` is answered here, before the CLI module loads: typer, pydantic and the
engine's imports take longer than hashing a hundred files, and a small batch is a short job.
Anything else `lookalike.hashing.run_cli` does not handle (--help, unknown options) goes to the
full CLI, which explains.
"""

import os
import sys


def main() -> None:
    # parallelism is worker processes: BLAS threads only spin on the engine's small matrix products
    # (4x the CPU of `hash` and 2.7x that of copy dedup on a busy machine); set before numpy loads
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if sys.argv[1:2] == ["hash"]:
        from lookalike.hashing import run_cli

        code = run_cli(sys.argv[2:])
        if code is not None:
            _leave(code)
    from lookalike.cli import app

    app()


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown, which only frees memory the system takes back anyway:
    unloading numpy's modules costs a fortieth of `hash`'s CPU time on a small batch."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: run_cli met a closed pipe (`lookalike hash ... | head`)
                stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
