"""Prints the table of a bench script from its timing files: medians over the turns, and ratios
taken within each turn (the machine's speed drifts, for both sides of a turn alike).

    ratios.py BASE LABEL=FILE [LABEL=FILE ...]

BASE holds the reference's lines (`LIBRARY KEY rows=N batch_us=T one_row_us=T`, one per key and
turn), each FILE mlship's lines for the same keys (`mlship KEY ...`), turn by turn. One-row times
compare the reference with the first FILE.
"""
import re
import statistics
import sys


def times(path):
    """`{key: (library, [batch_us per turn], [one_row_us per turn])}`, keys in file order."""
    out = {}
    for line in open(path):
        lib, key = line.split()[:2]
        batch = float(re.search(r"batch_us=([0-9.]+)", line).group(1))
        one = float(re.search(r"one_row_us=([0-9.]+)", line).group(1))
        entry = out.setdefault(key, (lib, [], []))
        entry[1].append(batch)
        entry[2].append(one)
    return out


base = times(sys.argv[1])
runs = [(label, times(path)) for label, path in (a.split("=", 1) for a in sys.argv[2:])]
med = statistics.median
head = f"{'model':42} {'library':12} {'lib_us':>9}"
for label, _ in runs:
    head += f" {label + '_us':>10} {'ratio':>6} {'(range)':>12}"
print(head + f" {'lib_1row_us':>11} {'ml_1row_us':>10} {'ratio':>6}")
for key, (lib, batch, one) in base.items():
    row = f"{key:42} {lib:12} {med(batch):9.0f}"
    for _, t in runs:
        ml = t[key][1]
        r = [a / b for a, b in zip(batch, ml)]
        row += f" {med(ml):10.0f} {med(r):5.1f}x {f'({min(r):.1f}-{max(r):.1f})':>12}"
    ml1 = runs[0][1][key][2]
    print(row + f" {med(one):11.1f} {med(ml1):10.2f} {med(one) / med(ml1):5.0f}x")
