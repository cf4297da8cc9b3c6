"""The scorers: each turns an application's links (links.py) into one signal in [0, 1] with its evidence.

Every scorer sees a `View`: the application, the applications it may know (all of them for `risk`, only
earlier ones for `risk_at_submission`) and the links among them. Links between two applications of the
same applicant (a re-application) are never ring evidence and are dropped here.

- background: applicants of other ids photographed in front of the same background within days, counted
  with the pair's background score; multiplied by `place` (private room vs public place).
- place: how private the shared background looks, learned from the history of that background (no list of
  places): a public place gathers unrelated devices and networks spread over months; a ring's room gathers
  applicants within days who share networks. Plain walls never get here (the background mode caps them).
- room_network: the ring context of a clean device: the other applicants in front of this background
  within days are linked to each other by device, MAC, IP or /24 although this one is not.
- device: shared device id, MAC (randomised MACs and MACs seen with many devices weigh less), IP, /24,
  GPS within metres, all within days; one shared IP is weak (carrier NAT), many applicants on it are not.
- known_fraud_device: device id / MAC / IP / /24 shared with applications an analyst marked as fraud.
- walltext: the same phone number or distinctive text on the wall behind other applicants; loan-advert
  wording. Harmless text alone is no evidence.
- scene: how crowded this background is compared with the history: many applicants from one room.
- face: the same face under another applicant id (identity reuse; weight 0 by default, see README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field



def ramp(x: float, lo: float, hi: float) -> float:
    return min(1.0, max(0.0, (x - lo) / (hi - lo)))


@dataclass
class Params:
    bg_floor: float = 0.55  # background score where a link starts to count ...
    bg_full: float = 0.75  # ... and where it counts fully (the mode's decision threshold is 0.7)
    close_days: float = 7.0  # submissions this close are "the same time window" ...
    far_days: float = 30.0  # ... and this far apart are not (a ring's members come within days)
    bg_saturation: float = 2.0  # close private-room neighbours that make the background signal ~0.63
    device_saturation: float = 1.0
    mac_busy: int = 3  # a MAC seen with this many device ids is shared hardware/spoofed: weighs less
    gps_close_m: float = 300.0
    public_below: float = 0.3  # privacy (see place) at or below which a shared background counts nothing ...
    private_above: float = 0.9  # ... and above which it counts fully
    nat_far_m: float = 2000.0  # a shared IP or /24 from further apart than this counts half (carrier NAT)
    case_bg_floor: float = 0.7  # cases want surer background links: similar-looking rooms score 0.65-0.75
    case_bg_full: float = 0.8
    case_risk: float = 0.5  # a shared network joins two applications into a case only when both are this risky


@dataclass
class Signal:
    value: float
    evidence: str = ""
    facts: dict = field(default_factory=dict)


def time_closeness(days: float, p: Params) -> float:
    return 1.0 - ramp(days, p.close_days, p.far_days)


def device_strength(ev: dict, p: Params) -> tuple[float, str]:
    """Strength in [0, 1] of the device/network evidence of one link, and what it is."""
    parts = []
    s = 0.0
    if ev.get("device"):
        s, parts = 1.0, ["device id"]
    if ev.get("mac"):
        w = 0.5 if ev.get("mac_local") else 0.9
        if ev.get("mac_devices", 1) >= p.mac_busy:
            w *= 0.4
        s = max(s, w)
        parts.append("randomised MAC" if ev.get("mac_local") else "MAC")
    gps = ev.get("gps_m")
    # a network shared from kilometres apart is a carrier's NAT pool, not one home or office
    net = 0.5 if gps is not None and gps > p.nat_far_m else 1.0
    if ev.get("ip"):
        s, parts = max(s, 0.35 * net), parts + ["IP"]
    elif ev.get("subnet"):
        s, parts = max(s, 0.2 * net), parts + ["/24"]
    if parts and gps is not None and gps <= p.gps_close_m:
        s = min(1.0, s + 0.15)
        parts.append(f"GPS {gps:.0f} m")
    return s, " + ".join(parts)


def private_weight(privacy: float, p: Params) -> float:
    """How much a shared background counts given its privacy: nothing for a public-looking group (<= 0.3),
    a third for a group nobody networks yet (0.5: e.g. a ring's second applicant on a clean phone), fully
    for a networked group within days (>= 0.9)."""
    return ramp(privacy, p.public_below, p.private_above)


def bg_strength(ev: dict, p: Params) -> float:
    return ramp(ev.get("bg") or 0.0, p.bg_floor, p.bg_full)


@dataclass
class View:
    """What one scoring pass knows: `me`, the visible applications and their links (other applicants only)."""

    me: int
    rows: dict  # seq -> applications row
    adj: dict  # seq -> {seq: evidence}, symmetric, restricted to visible applications
    fraud: set = field(default_factory=set)  # seqs an analyst marked as fraud
    p: Params = field(default_factory=Params)

    def links(self, s: int | None = None) -> dict:
        return self.adj.get(self.me if s is None else s, {})


def _noisy_or(xs) -> float:
    out = 1.0
    for x in xs:
        out *= 1.0 - min(1.0, max(0.0, x))
    return 1.0 - out


def _saturate(x: float, k: float) -> float:
    return 1.0 - math.exp(-x / k)


def bg_neighbours(v: View, s: int | None = None) -> dict[int, float]:
    out = {b: bg_strength(ev, v.p) for b, ev in v.links(s).items()}
    return {b: g for b, g in out.items() if g > 0}


def place(v: View) -> Signal:
    """Private room (1) vs public place (0), from the spread of the background's other applications:
    their time spread around this one, and how often they are linked to each other by a network."""
    nb = bg_neighbours(v)
    if not nb:
        return Signal(1.0, "", {"neighbours": 0})
    days = [v.links()[b]["days"] for b in nb]
    far = sum(nb[b] for b, d in zip(nb, days) if d > v.p.far_days) / sum(nb.values())
    members = list(nb) + [v.me]
    netted = sum(1 for b in members if any(device_strength(ev, v.p)[0] >= 0.2 and ev["days"] <= v.p.far_days
                                           for c, ev in v.links(b).items() if c in nb or c == v.me))
    net_share = netted / len(members)
    span = max(days)
    # a group of applicants nobody links by a network is half public; spread over months, fully. Networks
    # inside the group (a ring's shared /24s and phones) pull it back towards private.
    public = (1.0 - net_share) * (0.5 + 0.5 * far)
    private = 1.0 - public
    facts = {"neighbours": len(nb), "far_share": round(far, 2), "networked_share": round(net_share, 2),
             "span_days": round(span, 1)}
    if private < 0.5:
        why = (f"public place: {len(nb)} other applicants in front of this background, {100 * far:.0f}% of them "
               f"more than {v.p.far_days:.0f} days apart, unrelated networks")
    else:
        why = f"private room: other applicants within {span:.0f} days"
    return Signal(private, why, facts)


def background(v: View, privacy: Signal) -> Signal:
    nb = bg_neighbours(v)
    close = {b: g * time_closeness(v.links()[b]["days"], v.p) for b, g in nb.items()}
    n = sum(close.values())
    val = _saturate(n, v.p.bg_saturation) * private_weight(privacy.value, v.p)
    if val <= 0:
        return Signal(0.0, "", {"neighbours": len(nb)})
    best = max(close, key=lambda b: (close[b], v.links()[b]["bg"], -b))  # ties: the same one in every pass
    ev = v.links()[best]
    why = (f"same background as {sum(1 for x in close.values() if x > 0.3)} other applicant(s) within days "
           f"(best score {ev['bg']:.2f}, {ev['days']:.1f} days apart)")
    return Signal(val, why, {"neighbours": len(nb), "close": round(n, 2), "best": best})


def room_network(v: View) -> Signal:
    """Other applicants in front of this background within days who are networked among themselves."""
    nb = {b: g for b, g in bg_neighbours(v).items() if v.links()[b]["days"] <= v.p.far_days}
    if len(nb) < 2:
        return Signal(0.0)
    linked = 0.0
    for b, g in nb.items():
        if any(c in nb and device_strength(ev, v.p)[0] >= 0.2 for c, ev in v.links(b).items()):
            linked += g
    val = _saturate(linked, 2.0)
    if val <= 0:
        return Signal(0.0)
    return Signal(val, f"{linked:.0f} applicant(s) in the same room within days share phones/networks",
                  {"linked": round(linked, 2)})


def device(v: View) -> Signal:
    items = []
    for b, ev in v.links().items():
        s, what = device_strength(ev, v.p)
        if s > 0:
            items.append((s * time_closeness(ev["days"], v.p), what, ev["days"], b))
    if not items:
        return Signal(0.0)
    items.sort(key=lambda t: (-t[0], t[2], t[3]))
    val = _noisy_or(x[0] for x in items)
    s, what, days, b = items[0]
    n = sum(1 for x in items if x[0] > 0)
    return Signal(val, f"shares {what} with {n} other applicant(s) (closest {days:.1f} days apart)",
                  {"links": n, "best": b})


def known_fraud_device(v: View) -> Signal:
    if not v.fraud:
        return Signal(0.0)
    best = (0.0, "")
    for b, ev in v.links().items():
        if b in v.fraud:
            s, what = device_strength(ev, v.p)
            best = max(best, (s, what))  # ties: the same one in every pass (by text)
    return Signal(best[0], f"shares {best[1]} with a confirmed fraud case" if best[0] else "")


def walltext(v: View, me_wall: dict | None) -> Signal:
    phones, toks = set(), set()
    for b, ev in v.links().items():
        phones.update(ev.get("phones", []))
        toks.update(ev.get("tokens", []))
    if phones:
        return Signal(1.0, f"phone number {sorted(phones)[0]} on the wall behind other applicants",
                      {"phones": sorted(phones)})
    val = 0.0
    why = ""
    if toks:
        val, why = 0.6, f"the same wall text ({sorted(toks)[0]!r}) behind other applicants"
    if me_wall and me_wall.get("loan_ad"):
        if val < 0.5:
            val, why = 0.5, "loan-advert wording on the wall"
    return Signal(val, why, {"tokens": sorted(toks)})


def scene(v: View, privacy: Signal, crowd: float) -> Signal:
    """Many applicants within a month in front of one private background (a public place is crowded by
    nature): more than `crowd` distinct applicants is unusual."""
    nb = [b for b, g in bg_neighbours(v).items() if g > 0.5 and v.links()[b]["days"] <= v.p.far_days]
    n = len({v.rows[b]["applicant_id"] for b in nb})
    if n < 2:
        return Signal(0.0)
    val = ramp(n, crowd, 3 * crowd) * private_weight(privacy.value, v.p)
    return Signal(val, f"{n} applicants in front of one background within a month" if val else "", {"applicants": n})


def face(v: View) -> Signal:
    items = [(ev.get("face", 0.0), b) for b, ev in v.links().items() if ev.get("face")]
    if not items:
        return Signal(0.0)
    s, b = max(items, key=lambda t: (t[0], -t[1]))
    return Signal(ramp(s, 0.92, 0.97), f"the same face under another applicant id (similarity {s:.2f})",
                  {"similarity": s, "best": b})


def all_signals(v: View, *, wall: dict | None = None, crowd: float = 2.0) -> dict[str, Signal]:
    pl = place(v)
    return {"background": background(v, pl), "place": pl, "room_network": room_network(v), "device": device(v),
            "known_fraud_device": known_fraud_device(v), "walltext": walltext(v, wall),
            "scene": scene(v, pl, crowd), "face": face(v)}
