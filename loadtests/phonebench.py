"""µs of CPU per ``to_e164`` for a new caller: the NANP fast lane against libphonenumber.

Every ping from a caller the ping cache has not seen converts its number afresh, so this
times unique numbers (as ``pathbench.py``'s pings carry) in the shapes publishers send,
each through ``to_e164`` and through libphonenumber's own path (``_parsed_e164``: parse,
``is_valid_number``, ``format_number``, what ``to_e164`` did for every number before). CPU
time (``time.process_time``), best of ``--rounds``, so a busy box only ever adds.

    uv run python loadtests/phonebench.py [--count 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Callable

from gateway.ping.phone import _parsed_e164, to_e164

# US, Canadian and Caribbean area codes, as a mixed caller list would hold them.
AREAS = ("212", "213", "305", "312", "404", "415", "512", "617", "702", "713", "416", "876")


def numbers(count: int, shape: str) -> list[str]:
    rng = random.Random(1)
    return [
        shape.format(a=rng.choice(AREAS), b=rng.randint(200, 999), c=f"{rng.randrange(10_000):04d}")
        for _ in range(count)
    ]


def best_us(convert: Callable[[str], str], inputs: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for raw in inputs:
            with contextlib.suppress(ValueError):  # some Canadian, Jamaican ones are invalid
                convert(raw)
        best = min(best, time.process_time() - start)
    return best / len(inputs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for shape in ("+1{a}{b}{c}", "({a}) {b}-{c}", "+44 20 7{b} {c}"):
        inputs = numbers(args.count, shape)
        fast = best_us(to_e164, inputs, args.rounds)
        slow = best_us(_parsed_e164, inputs, args.rounds)
        print(f"{shape:16s} to_e164 {fast:6.2f} µs   libphonenumber path {slow:6.2f} µs")


if __name__ == "__main__":
    main()
