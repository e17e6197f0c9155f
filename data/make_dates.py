"""Generate the bundled demo corpus: human-written dates -> ISO 8601 dates.

Each line of the output is one parallel pair, ``source<TAB>target\\n``, UTF-8,
where the source is a date written the way a person might type it and the
target is the same date as ``YYYY-MM-DD`` (``<TAB>`` is one tab character)::

    Friday, March 5, 2021<TAB>2021-03-05
    3/5/21<TAB>2021-03-05

Rules
-----
* Dates are drawn uniformly (by day) from 1950-01-01 to 2049-12-31.
* Each pair picks one of the formats below with equal probability
  (shown for Friday, 5 March 2021):

  ======  ===========================  ======  ===========================
  1       March 5, 2021                13      05 Mar 2021
  2       March 5th 2021               14      5-Mar-2021
  3       5 March 2021                 15      mar 5, '21
  4       5th of March, 2021           16      5 march '21
  5       the 5th of march 2021        17      march 5, 2021
  6       Friday, March 5, 2021        18      MARCH 5, 2021
  7       Friday 5th March 2021        19      5 MAR 2021
  8       Fri 5 Mar 2021               20      2021 March 5
  9       Fri, Mar 5, 2021             21      2021/03/05
  10      Mar 5 2021                   22      3/5/2021
  11      Mar. 5, 2021                 23      03/05/2021
  12      Mar 05, 2021                 24      3/5/21
  ======  ===========================  ======  ===========================

  (Format 11 only adds the dot when the name is really abbreviated, so
  May stays "May 5, 2021".)
* Numeric dates use ONE convention only: US month/day/year (``3/5/2021`` is
  March 5), plus year-first ``2021/03/05``. Day-first numeric forms such as
  ``05.03.2021`` or ``5/3/2021`` meaning 5 March are deliberately absent, so
  every source has exactly one reading.
* Two-digit years (``'21``, ``3/5/21``): 50-99 mean 19xx and 00-49 mean 20xx.
  This matches the 1950-2049 range exactly, so the short form is never
  ambiguous.
* Weekday names are computed from the date, so they are always correct.
* Month and weekday names come from tables in this file, not from
  ``strftime``, so the output does not depend on the locale.
* Only ``random.Random(seed)`` is used, so the same arguments give a
  byte-identical file on every run and platform. Duplicate pairs may occur
  and are kept; no side is ever empty, contains a tab, or (for sources)
  reaches 40 characters.

License: this corpus is generated data produced by the seq2seq-cli project
itself (no third-party text); it is free to use, modify and redistribute.

Usage::

    python data/make_dates.py [--num-pairs N] [--seed S] [--output PATH]

Defaults: 25,000 pairs, seed 0, output ``dates.tsv`` next to this script.
Standard library only, so it runs without installing the project.
"""

from __future__ import annotations

import argparse
import datetime
import random
from collections.abc import Callable, Sequence
from pathlib import Path

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)

DEFAULT_NUM_PAIRS = 25_000
DEFAULT_SEED = 0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "dates.tsv"

# Own name tables instead of strftime("%B"/"%A"): strftime follows the
# process locale, which would make the corpus platform-dependent.
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Indexed by date.weekday(), which counts Monday as 0.
WEEKDAY_NAMES = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


def month_name(date: datetime.date) -> str:
    return MONTH_NAMES[date.month - 1]


def month_abbr(date: datetime.date) -> str:
    return month_name(date)[:3]


def month_abbr_dotted(date: datetime.date) -> str:
    # "May." would be wrong: only add the dot when letters were dropped.
    name = month_name(date)
    return name if len(name) <= 3 else name[:3] + "."


def weekday_name(date: datetime.date) -> str:
    return WEEKDAY_NAMES[date.weekday()]


def weekday_abbr(date: datetime.date) -> str:
    return weekday_name(date)[:3]


def ordinal(day: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    if 11 <= day <= 13:  # 11th, 12th, 13th break the last-digit rule
        return f"{day}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def short_year(date: datetime.date) -> str:
    # Unambiguous because the corpus spans exactly 1950-2049 (see docstring).
    return f"{date.year % 100:02d}"


# Every renderer takes a date and returns the human-written source. The
# comment above each one shows its output for Friday, 5 March 2021.
Format = Callable[[datetime.date], str]
FORMATS: tuple[Format, ...] = (
    # March 5, 2021
    lambda d: f"{month_name(d)} {d.day}, {d.year}",
    # March 5th 2021
    lambda d: f"{month_name(d)} {ordinal(d.day)} {d.year}",
    # 5 March 2021
    lambda d: f"{d.day} {month_name(d)} {d.year}",
    # 5th of March, 2021
    lambda d: f"{ordinal(d.day)} of {month_name(d)}, {d.year}",
    # the 5th of march 2021
    lambda d: f"the {ordinal(d.day)} of {month_name(d)} {d.year}".lower(),
    # Friday, March 5, 2021
    lambda d: f"{weekday_name(d)}, {month_name(d)} {d.day}, {d.year}",
    # Friday 5th March 2021
    lambda d: f"{weekday_name(d)} {ordinal(d.day)} {month_name(d)} {d.year}",
    # Fri 5 Mar 2021
    lambda d: f"{weekday_abbr(d)} {d.day} {month_abbr(d)} {d.year}",
    # Fri, Mar 5, 2021
    lambda d: f"{weekday_abbr(d)}, {month_abbr(d)} {d.day}, {d.year}",
    # Mar 5 2021
    lambda d: f"{month_abbr(d)} {d.day} {d.year}",
    # Mar. 5, 2021 (but "May 5, 2021")
    lambda d: f"{month_abbr_dotted(d)} {d.day}, {d.year}",
    # Mar 05, 2021
    lambda d: f"{month_abbr(d)} {d.day:02d}, {d.year}",
    # 05 Mar 2021
    lambda d: f"{d.day:02d} {month_abbr(d)} {d.year}",
    # 5-Mar-2021
    lambda d: f"{d.day}-{month_abbr(d)}-{d.year}",
    # mar 5, '21
    lambda d: f"{month_abbr(d)} {d.day}, '{short_year(d)}".lower(),
    # 5 march '21
    lambda d: f"{d.day} {month_name(d)} '{short_year(d)}".lower(),
    # march 5, 2021
    lambda d: f"{month_name(d)} {d.day}, {d.year}".lower(),
    # MARCH 5, 2021
    lambda d: f"{month_name(d)} {d.day}, {d.year}".upper(),
    # 5 MAR 2021
    lambda d: f"{d.day} {month_abbr(d)} {d.year}".upper(),
    # 2021 March 5
    lambda d: f"{d.year} {month_name(d)} {d.day}",
    # 2021/03/05 (year first, so never confused with M/D/Y)
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    # 3/5/2021 (US month/day/year)
    lambda d: f"{d.month}/{d.day}/{d.year}",
    # 03/05/2021 (US month/day/year)
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    # 3/5/21 (US month/day/two-digit year)
    lambda d: f"{d.month}/{d.day}/{short_year(d)}",
)


def random_date(rng: random.Random) -> datetime.date:
    # Drawing a day number (not year, month, day separately) makes every
    # calendar day equally likely, leap days included.
    day_number = rng.randint(FIRST_DATE.toordinal(), LAST_DATE.toordinal())
    return datetime.date.fromordinal(day_number)


def generate_pairs(num_pairs: int, seed: int) -> list[tuple[str, str]]:
    """Return ``num_pairs`` (human date, ISO date) pairs, fully determined by ``seed``."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(num_pairs):
        date = random_date(rng)
        render = rng.choice(FORMATS)
        pairs.append((render(date), date.isoformat()))
    return pairs


def to_tsv(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{source}\t{target}\n" for source, target in pairs)


def write_corpus(pairs: Sequence[tuple[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="\n" so Windows does not turn the file into CRLF.
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(to_tsv(pairs))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a human-date -> ISO-date parallel corpus (TSV)."
    )
    parser.add_argument(
        "--num-pairs",
        type=positive_int,
        default=DEFAULT_NUM_PAIRS,
        help=f"number of pairs to write (default: {DEFAULT_NUM_PAIRS})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="output TSV path (default: dates.tsv next to this script)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = generate_pairs(args.num_pairs, args.seed)
    write_corpus(pairs, args.output)
    print(f"wrote {len(pairs)} pairs to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
