"""Covering arrays of strength 2: a few rows (readings) in which every pair of values of any two factors appears
at least once, so a design far smaller than the full factorial still tries every value next to every value of
every other factor. A Latin hypercube or a random sample does not guarantee that; a covering array does.

`covering_array` searches for the fewest rows it can, from the lower bound (the two largest value counts
multiplied: their pairs alone need that many rows) upwards, by a local search seeded for reproducibility (the
simulated-annealing-style cell moves of Cohen, Colbourn and Ling, "Constructing strength three covering arrays
with augmented annealing", Discrete Math. 2008, reduced to strength 2). On the problems whose optimum is known
it finds it (tests/test_readings.py: binary factors, where Kleitman-Spencer and Katona give the optimum in
closed form, and four 3-valued factors, the 9-row orthogonal array). If the search fails at every size below
the full factorial, the full factorial is returned: it always covers.

Pure Python (the Snakefile builds the design at parse time).
"""

from __future__ import annotations

import itertools
import math
import random

Pair = tuple[tuple[str, object], tuple[str, object]]


def required_pairs(levels: dict[str, list]) -> set[Pair]:
    """Every pair ((factor, value), (later factor, value)) a strength-2 covering array must contain."""
    factors = list(levels)
    return {
        ((f, a), (g, b)) for i, f in enumerate(factors) for g in factors[i + 1 :] for a in levels[f] for b in levels[g]
    }


def row_pairs(row: dict, factors: list[str]) -> set[Pair]:
    return {((f, row[f]), (g, row[g])) for i, f in enumerate(factors) for g in factors[i + 1 :]}


def uncovered(rows: list[dict], levels: dict[str, list]) -> list[Pair]:
    """The pairs no row contains, in factor and value order (empty: the rows are a covering array)."""
    factors = list(levels)
    found = set().union(*(row_pairs(row, factors) for row in rows)) if rows else set()
    order = {f: (i, {v: j for j, v in enumerate(levels[f])}) for i, f in enumerate(factors)}

    def key(pair: Pair):
        (f, a), (g, b) = pair
        return order[f][0], order[f][1].get(a, -1), order[g][0], order[g][1].get(b, -1)

    return sorted(required_pairs(levels) - found, key=key)


def lower_bound(levels: dict[str, list]) -> int:
    """No strength-2 covering array has fewer rows than the two largest value counts multiplied."""
    counts = sorted((len(values) for values in levels.values()), reverse=True)
    return math.prod(counts[:2]) if counts else 1


def _search(levels: dict[str, list], n_rows: int, rng: random.Random, steps: int) -> list[dict] | None:
    """n_rows rows covering every pair, or None when `steps` moves did not find them.

    A move picks an uncovered pair and writes it into the row where that costs fewest other pairs (ties at
    random); a move that uncovers more than it covers is taken one time in ten, which lets the search leave a
    local minimum."""
    factors = list(levels)
    pairs = list(itertools.combinations(factors, 2))
    rows = [{f: rng.choice(levels[f]) for f in factors} for _ in range(n_rows)]
    count = {(f, a, g, b): 0 for f, g in pairs for a in levels[f] for b in levels[g]}
    for row in rows:
        for f, g in pairs:
            count[(f, row[f], g, row[g])] += 1
    missing = sorted((k for k, c in count.items() if c == 0), key=repr)
    for _ in range(steps):
        if not missing:
            return rows
        f, a, g, b = rng.choice(missing)
        best = None
        for i, row in enumerate(rows):
            changed = dict(row) | {f: a, g: b}
            moves: dict[tuple, int] = {}
            for p, q in pairs:
                if p in (f, g) or q in (f, g):
                    old, new = (p, row[p], q, row[q]), (p, changed[p], q, changed[q])
                    if old != new:
                        moves[old] = moves.get(old, 0) - 1
                        moves[new] = moves.get(new, 0) + 1
            cost = sum((count[k] + d == 0) - (count[k] == 0) for k, d in moves.items())
            if best is None or cost < best[0] or (cost == best[0] and rng.random() < 0.5):
                best = (cost, i, moves)
        cost, i, moves = best
        if cost <= 0 or rng.random() < 0.1:
            for k, d in moves.items():
                count[k] += d
            rows[i] |= {f: a, g: b}
            missing = sorted((k for k, c in count.items() if c == 0), key=repr)
    return rows if not missing else None


def covering_array(levels: dict[str, list], first: dict | None = None, seed: int = 0, steps: int = 5_000) -> list[dict]:
    """The fewest rows found (each {factor: value}) covering every pair of values of any two factors.

    `first`, if given, becomes the first row: the values of each factor are relabelled (a covering array stays
    one when a factor's values are permuted) so the search's first row reads `first`. The remaining rows are
    sorted by value order. Deterministic for a given `seed`.
    """
    factors = list(levels)
    if any(len(values) == 0 for values in levels.values()):
        raise ValueError(f"every factor needs at least one value: {levels}")
    full = [dict(zip(factors, combo)) for combo in itertools.product(*(levels[f] for f in factors))]
    rng = random.Random(seed)
    rows = None
    for n_rows in range(lower_bound(levels), len(full)):
        rows = _search(levels, n_rows, rng, steps)
        if rows is not None:
            break
    rows = rows or full
    if first is not None:
        relabel = {}
        for f in factors:
            if first[f] not in levels[f]:
                raise ValueError(f"{f}: {first[f]!r} is not one of its values {levels[f]}")
            a, b = rows[0][f], first[f]
            relabel[f] = {a: b, b: a}
        rows = [{f: relabel[f].get(row[f], row[f]) for f in factors} for row in rows]
    head, rest = rows[:1], rows[1:]
    index = {f: {v: j for j, v in enumerate(levels[f])} for f in factors}
    rest = sorted(rest, key=lambda row: [index[f][row[f]] for f in factors])
    # a row repeated by the search adds nothing
    out = []
    for row in head + rest:
        if row not in out:
            out.append(row)
    return out
