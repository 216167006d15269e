#!/usr/bin/env python3
"""Writes what pydantic itself says of several thousand integer spellings, for the gateway's tests.

The upstream reads `page_size` with pydantic v2 in lax mode. `LaxInteger` and `ListQuery` re-implement
that reading; `PydanticOracleTests` checks them against every line this script writes, so any difference
from pydantic is a failing test rather than a page served where the upstream would refuse.

The first line of the fixture names the pydantic version and, for each error type seen, pydantic's
message and context (the script checks that they are the same for every input). Each further line is
`[input, int, page_size]`: `int` is `TypeAdapter(int)`'s verdict and `page_size` the endpoint's
declaration's (`int`, `ge=1`, `le=100`), each either the value as decimal text or `{"error": TYPE}`.

Make it again (pydantic is pinned: the fixture says which version made it):
    python3 -m venv /tmp/pydantic-oracle
    /tmp/pydantic-oracle/bin/pip install 'pydantic==2.14.4'
    /tmp/pydantic-oracle/bin/python scripts/pydantic-oracle.py
"""

import argparse
import json
import os
import random
import sys

import pydantic
import pydantic_core
from pydantic import Field, TypeAdapter, ValidationError
from typing import Annotated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "Tests", "GatewayCoreTests", "Fixtures", "pydantic-integers.jsonl")

# Spaces of several kinds: Rust's `str::trim` (Unicode White_Space) strips some, Python's `int()` others.
SPACES = ["", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2028",
          "\u3000", "\x1c", "\x1f", "\u200b", "\ufeff", "\u180e"]
SIGNS = ["", "+", "-", "++", "--", "+-", "-+", "0-", "0+", "00-", "-0", "+0", "_", "-_", "+_"]
CORES = ["0", "00", "1", "5", "9", "01", "007", "10", "30", "35", "99", "100", "101", "191", "500", "1000",
         "0_0", "1_0", "1__0", "_1", "1_", "73_41", "0_1", "00_0_1", "1_0_0", "9223372036854775807",
         "9223372036854775808", "18446744073709551616", "99999999999999999999", "12a", "a", "", "٣", "１",
         "۵", "᠐", "1٣", "0x10", "0b1", "0o7", "1e1", "1E2", "inf", "nan", "true", "1 2", "1,0", "½"]
FRACTIONS = ["", ".", ".0", ".00", "._0", ".0_0", ".5", "..0", ".0.", "e0"]
MORE_FRACTIONS = [".000", "._", ".01", ".10", ".0.0", ".0e0", " .0", ". 0", ".٠", ".0 0", ".0\xa0", ".0_"]
PAGE_SIZE = TypeAdapter(Annotated[int, Field(ge=1, le=100)])
INT = TypeAdapter(int)


def systematic():
    """Every sign with every core and fraction, then the spaces around a few of them."""
    out = []
    for sign in SIGNS:
        for core in CORES:
            for fraction in FRACTIONS:
                out.append(sign + core + fraction)
        for core in ["0", "1", "00", "1_0", "100", "101"]:
            for fraction in MORE_FRACTIONS:
                out.append(sign + core + fraction)
    for lead in SPACES:
        for trail in SPACES:
            for body in ["5", "+5", "-5", "1.0", "1.", "1_0", "007", "0"]:
                out.append(lead + body + trail)
    return out


def random_spellings(count, rng):
    """Random strings over the alphabet that matters: digits, signs, `_`, `.`, spaces, a few others."""
    alphabet = list("0000111223456789") + ["_", "_", ".", ".", "+", "-", " ", "\t", "\xa0", "\x1c", "e", "٣"]
    out = []
    for _ in range(count):
        length = rng.choice([1, 2, 3, 3, 4, 4, 5, 6, 8, 12, 20, 24])
        out.append("".join(rng.choice(alphabet) for _ in range(length)))
    return out


def long_spellings():
    """Lengths around the 4300-digit limit, which pydantic counts in more than one way."""
    out = []
    for n in (4298, 4299, 4300, 4301, 4302):
        for text in ["9" * n, "1" + "0" * (n - 1), "-" + "9" * n, "+" + "9" * n, "0" + "9" * n,
                     "9" * n + ".0", "9" * n + "x", " " + "9" * n, "9" * n + " "]:
            out.append(text)
    out += ["0" * 5000 + "1", "0" * 5000, "1." + "0" * 5000, " " * 5000 + "5", "1_" * 2150 + "1",
            "9" * 4300 + "_9", "9" * 4301 + ".5", "-0" + "9" * 4300, "\xa0" + "9" * 4301, "a" * 4301]
    return out


def verdict(adapter, text, errors):
    """The value as text, or `{"error": TYPE}`; each type's message and context are kept in `errors`."""
    try:
        return str(adapter.validate_python(text))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        detail = {"msg": first["msg"], "ctx": dict(first.get("ctx", {}))}
        key = first["type"] + ("" if adapter is INT else ":page_size")
        if errors.setdefault(key, detail) != detail:
            sys.exit(f"pydantic's {key} error varies with the input ({text!r}): the fixture cannot share it")
        return {"error": first["type"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--random", type=int, default=2000, help="how many random spellings to add")
    args = parser.parse_args()
    sys.set_int_max_str_digits(0)  # values of 4300 digits are written out as text

    rng = random.Random(args.seed)
    inputs = []
    seen = set()
    for text in systematic() + random_spellings(args.random, rng) + long_spellings():
        if text not in seen:
            seen.add(text)
            inputs.append(text)

    errors = {}
    lines = [[text, verdict(INT, text, errors), verdict(PAGE_SIZE, text, errors)] for text in inputs]
    header = {"pydantic": pydantic.VERSION, "pydantic_core": pydantic_core.__version__, "count": len(lines),
              "errors": errors}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="ascii") as out:
        out.write(json.dumps(header, ensure_ascii=True) + "\n")
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"{len(inputs)} spellings, pydantic {pydantic.VERSION} (core {pydantic_core.__version__}): {args.output}")


if __name__ == "__main__":
    main()
