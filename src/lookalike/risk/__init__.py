"""Fraud risk of loan applications: a layer above the engine (it calls `Index`, never the reverse).

    from lookalike.risk import RiskEngine
    eng = RiskEngine(index)          # state in <index>/risk.sqlite
    eng.score_csv("applications.csv")  # or eng.submit(fields, photo_bytes) for one application online
"""

from lookalike.risk.engine import RiskEngine, Scored

__all__ = ["RiskEngine", "Scored"]
