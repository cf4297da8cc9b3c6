"""Fusion of the signals into one explained risk in [0, 1].

risk = 1 - prod_k (1 - w_k * s_k)  (a noisy-OR: each signal alone can raise the risk up to its weight;
independent signals add up; no signal can lower the risk). `place` has no weight of its own: it multiplies
the background signal (a public place is not a ring's room). The reasons are the strongest weighted
contributions, in words. A fitted model (`risk train`) replaces the noisy-OR by a logistic regression over
the same signals, stored in risk.sqlite.
"""

from __future__ import annotations

import math

from lookalike.risk.signals import Signal

# Defaults (documented in the README). DEV tuning split only (see eval/risk.py: rings/places of one half).
DEFAULT_WEIGHTS: dict[str, float] = {
    "background": 0.85,  # the seeds' core: other applicants in front of the same private background within days
    "room_network": 0.6,  # clean device in a room whose other applicants share phones/networks
    "device": 0.7,  # shared device id / MAC / IP / subnet within days (noisy-OR over the applicants)
    "known_fraud_device": 0.6,  # device/network of an application an analyst marked fraud
    "walltext": 0.8,  # same phone number / distinctive text behind other applicants; loan adverts
    "scene": 0.2,  # crowded background compared with the history
    "face": 0.0,  # same face under another applicant id: 0 on the benchmark (its faces are reused on purpose)
}

SIGNALS = list(DEFAULT_WEIGHTS)


def fuse(signals: dict[str, Signal], weights: dict[str, float] | None = None, model: dict | None = None
         ) -> tuple[float, str]:
    """(risk, reasons) of one application."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    contrib = {k: w.get(k, 0.0) * signals[k].value for k in SIGNALS if k in signals}
    if model:
        z = model["intercept"] + sum(model["coef"].get(k, 0.0) * signals[k].value for k in SIGNALS if k in signals)
        risk = 1.0 / (1.0 + math.exp(-z))
    else:
        risk = 1.0 - math.prod(1.0 - min(1.0, c) for c in contrib.values())
    top = [k for k in sorted(contrib, key=lambda k: -contrib[k]) if contrib[k] >= 0.05 and signals[k].evidence][:2]
    reasons = "; ".join(signals[k].evidence for k in top)
    pl = signals.get("place")
    if pl is not None and pl.value < 0.5 and pl.evidence:
        reasons = (reasons + "; " if reasons else "") + pl.evidence + " (not counted as a ring)"
    return round(float(risk), 4), reasons or "no link to other applicants"


def vector(signals: dict[str, Signal]) -> list[float]:
    return [signals[k].value if k in signals else 0.0 for k in SIGNALS]
