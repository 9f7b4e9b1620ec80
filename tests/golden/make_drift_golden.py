#!/usr/bin/python3
"""Writes learn/drift_golden.json: where River's ADWIN and Page-Hinkley fire on seeded 0/1 error streams.

Run with Debian's python3:  /usr/bin/python3 tests/golden/make_drift_golden.py

River is not packaged for Debian, so this is a plain-Python reference written from River's documented
algorithms (river.drift.ADWIN and river.drift.PageHinkley, River 0.15+):

ADWIN (Bifet & Gavalda 2007, River's AdaptiveWindowing): the window is an exponential histogram, rows of
buckets where row r holds buckets of 2**r items (row 0 the newest), at most max_buckets per row: when a
row holds max_buckets + 1, its two oldest merge into one bucket of the next row (totals add, variances
add plus n1*n2*(mu1-mu2)**2/(n1+n2)), cascading while the next row overflows. Every `clock` updates, once
the window holds more than `grace_period` items, each cut between buckets from the oldest end is tested
(both sides >= min_window_length items): the cut is significant when |mu0 - mu1| > eps with
  delta' = ln(2 ln(width) / delta), m = 1/(n0 - min_len + 1) + 1/(n1 - min_len + 1),
  eps = sqrt(2 m var_window delta') + 2/3 delta' m
(var_window = the window's variance / width). A significant cut drops the oldest bucket and restarts the
scan; the update reports a drift when any cut was significant. The window is not reset on drift.

Page-Hinkley (two-sided, mode "both"): the running mean x_mean of the values since the last reset,
dev = x - x_mean, S+ = alpha S+ + dev - delta, S- = alpha S- + dev + delta, with m+ = min S+ (from +inf)
and M- = max S- (from -1); after min_instances values it fires when S+ - m+ > threshold or
M- - S- > threshold. The update after a drift starts from a fresh state (River's _reset).

The script checks its reference against River's documented examples (PageHinkley's docstring: the
stream random.Random(12345).choices([0, 1], k=1000) + .choices(range(4, 8), k=1000) fires first at index
1006; ADWIN's fires first at 1023) and then records the detections on 0/1 streams drawn with Python's
random module; the streams themselves are stored in the JSON so the C++ test replays them exactly.
"""
import json
import math
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "learn", "drift_golden.json")


class Adwin:
    def __init__(self, delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10):
        self.delta, self.clock, self.max_buckets = delta, clock, max_buckets
        self.min_len, self.grace = min_window_length, grace_period
        self.rows = [[]]  # rows[r]: list of [total, variance], oldest first; buckets of 2**r items
        self.total = self.variance = 0.0
        self.width = 0
        self.tick = 0

    def _insert(self, value):
        self.rows[0].append([value, 0.0])
        self.width += 1
        if self.width > 1:
            d = value - self.total / (self.width - 1)
            self.variance += (self.width - 1) * d * d / self.width
        self.total += value
        r = 0
        while len(self.rows[r]) == self.max_buckets + 1:
            if r + 1 == len(self.rows):
                self.rows.append([])
            (t1, v1), (t2, v2) = self.rows[r][0], self.rows[r][1]
            n = 2.0 ** r
            mu1, mu2 = t1 / n, t2 / n
            self.rows[r + 1].append([t1 + t2, v1 + v2 + n * n * (mu1 - mu2) ** 2 / (2 * n)])
            del self.rows[r][:2]
            r += 1

    def _drop_oldest(self):
        r = len(self.rows) - 1
        n = 2.0 ** r
        u, v = self.rows[r][0]
        self.width -= n
        self.total -= u
        mu, mu_w = u / n, self.total / self.width
        self.variance -= v + n * self.width * (mu - mu_w) ** 2 / (n + self.width)
        del self.rows[r][0]
        if not self.rows[r]:
            self.rows.pop()
        return n

    def _cut(self, n0, n1, diff):
        dp = math.log(2 * math.log(self.width) / self.delta)
        m = 1.0 / (n0 - self.min_len + 1) + 1.0 / (n1 - self.min_len + 1)
        eps = math.sqrt(2 * m * (self.variance / self.width) * dp) + 2.0 / 3.0 * dp * m
        return abs(diff) > eps

    def update(self, value):
        self._insert(float(value))
        self.tick += 1
        drift = False
        if self.tick % self.clock == 0 and self.width > self.grace:
            again = True
            while again:
                again = False
                n0, n1, u0, u1 = 0.0, float(self.width), 0.0, self.total
                done = False
                for r in range(len(self.rows) - 1, -1, -1):
                    if done:
                        break
                    size = 2.0 ** r
                    row = self.rows[r]
                    for k in range(len(row) - 1):
                        n0 += size
                        n1 -= size
                        u0 += row[k][0]
                        u1 -= row[k][0]
                        if r == 0 and k == len(row) - 1:
                            done = True
                            break
                        if n1 >= self.min_len and n0 >= self.min_len and self._cut(n0, n1, u0 / n0 - u1 / n1):
                            again = drift = True
                            if self.width > 0:
                                self._drop_oldest()
                                done = True
                                break
        return drift


class PageHinkley:
    def __init__(self, min_instances=30, delta=0.005, threshold=50.0, alpha=1 - 0.0001):
        self.min_instances, self.delta, self.threshold, self.alpha = min_instances, delta, threshold, alpha
        self.drift = False
        self._reset()

    def _reset(self):
        self.n, self.mean = 0, 0.0
        self.s_inc = self.s_dec = 0.0
        self.min_inc, self.max_dec = math.inf, -1.0
        self.drift = False

    def update(self, x):
        if self.drift:
            self._reset()
        self.n += 1
        self.mean += (x - self.mean) / self.n
        dev = x - self.mean
        self.s_inc = self.alpha * self.s_inc + dev - self.delta
        self.s_dec = self.alpha * self.s_dec + dev + self.delta
        self.min_inc = min(self.min_inc, self.s_inc)
        self.max_dec = max(self.max_dec, self.s_dec)
        if self.n >= self.min_instances:
            self.drift = (self.s_inc - self.min_inc > self.threshold) or (self.max_dec - self.s_dec > self.threshold)
        return self.drift


def detections(detector, stream):
    return [i for i, x in enumerate(stream) if detector.update(x)]


def error_stream(rng, phases):
    """0/1 errors: phases is a list of (length, error rate)."""
    out = []
    for n, p in phases:
        out += [1 if rng.random() < p else 0 for _ in range(n)]
    return out


def main():
    rng = random.Random(12345)
    doc = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    ph_doc = detections(PageHinkley(), doc)
    assert ph_doc[0] == 1006, f"PageHinkley reference disagrees with River's docstring: {ph_doc[:3]}"
    adwin_doc = detections(Adwin(), doc)
    assert adwin_doc[0] == 1023, f"ADWIN reference disagrees with River's docstring: {adwin_doc[:3]}"

    cases = [
        ("stable_low", 7, [(3000, 0.1)]),
        ("jump_up", 11, [(1500, 0.1), (1500, 0.45)]),
        ("recovery", 13, [(1000, 0.5), (1000, 0.15), (1000, 0.05)]),
        ("gradual", 17, [(500, 0.2), (500, 0.3), (500, 0.4), (500, 0.5), (1000, 0.6)]),
    ]
    out = {"generated_by": "tests/golden/make_drift_golden.py", "river_doc_stream_first": {
        "page_hinkley": ph_doc[0], "adwin": adwin_doc[0]}, "cases": []}
    for name, seed, phases in cases:
        stream = error_stream(random.Random(seed), phases)
        out["cases"].append({
            "name": name,
            "stream": "".join(map(str, stream)),
            "adwin": detections(Adwin(), stream),
            "page_hinkley": detections(PageHinkley(), stream),
        })
    # The documented stream (digits 0..7) too: both detectors take any real value.
    out["cases"].append({"name": "river_doc", "stream": "".join(map(str, doc)), "adwin": adwin_doc, "page_hinkley": ph_doc})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    for c in out["cases"]:
        print(c["name"], "adwin", c["adwin"][:8], "ph", c["page_hinkley"][:8])


if __name__ == "__main__":
    main()
