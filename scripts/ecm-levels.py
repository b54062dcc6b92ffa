#!/usr/bin/env python3
"""The curve counts of crunch's ECM levels (crates/compute/src/factor/ecm_mp.rs).

For each level (a factor size of D digits and the B1 GMP-ECM's README
recommends for it), the expected number of curves that find a factor of D
digits with stage 2 up to B2 = 100 B1 is 1 / P, where P is the probability
that the group order of a curve, divided by its known torsion, is B1-smooth
except for one prime up to B2. As GMP-ECM does (its `-v` output), P comes from
Dickman's rho for a number of 10^(D - 0.5) / S, where S stands for the extra
smoothness of Suyama's curves; S = 18 puts this within 10% of what
`ecm -v -param 0 -c 1 B1 100*B1` prints at 35 to 45 digits (checked with GMP-ECM
7.0.5 at B1 = 5e4, 2.5e5, 1e6 and 3e6), the only sizes it prints.

    python3 scripts/ecm-levels.py
"""
import math

STEP = 1e-3
TOP = 40.0
_width = int(1 / STEP)
_rho = [1.0] * (int(TOP / STEP) + 2)
for i in range(_width + 1, len(_rho)):
    u = i * STEP
    # rho'(u) = -rho(u - 1) / u, trapezoid rule.
    _rho[i] = _rho[i - 1] - STEP * 0.5 * (_rho[i - 1 - _width] / (u - STEP) + _rho[i - _width] / u)


def rho(u):
    if u <= 1:
        return 1.0
    if u >= TOP:
        return 0.0
    i = int(u / STEP)
    f = u / STEP - i
    return _rho[i] * (1 - f) + _rho[i + 1] * f


def probability(b1, b2, digits, smoothness=18.0):
    """B1-smooth, or B1-smooth but for one prime in (B1, B2]."""
    log_n = math.log(10 ** (digits - 0.5) / smoothness)
    a, b = math.log(b1) / log_n, math.log(b2) / log_n
    p = rho(1 / a)
    steps = 2000
    for k in range(steps):
        t = a + (b - a) * (k + 0.5) / steps
        p += rho((1 - t) / a) / t * (b - a) / steps
    return p


LEVELS = [(15, 2_000), (20, 11_000), (25, 50_000), (30, 250_000), (35, 1_000_000), (40, 3_000_000), (45, 11_000_000)]

if __name__ == "__main__":
    print("| digits | B1 | B2 | curves |\n|---:|---:|---:|---:|")
    for digits, b1 in LEVELS:
        print(f"| {digits} | {b1} | {100 * b1} | {round(1 / probability(b1, 100 * b1, digits))} |")
