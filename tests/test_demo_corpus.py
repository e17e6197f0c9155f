"""Tests for the bundled demo corpus (data/dates.tsv) and its generator."""

from __future__ import annotations

import datetime
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR_PATH = REPO_ROOT / "data" / "make_dates.py"
CORPUS_PATH = REPO_ROOT / "data" / "dates.tsv"

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)

# Spelled out here rather than taken from the generator, so the check that a
# weekday is right does not reuse the code under test. Monday first, as in
# date.weekday().
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# strptime patterns for every format, applied after normalize_source().
# strptime matches month and weekday names case-insensitively, so the
# lowercase and ALL-CAPS variants need no patterns of their own. Numeric
# patterns are US month/day/year only: that is the corpus convention.
PATTERNS = (
    "%B %d, %Y",  # March 5, 2021 / march 5, 2021 / MARCH 5, 2021
    "%B %d %Y",  # March 5th 2021
    "%d %B %Y",  # 5 March 2021 / the 5th of march 2021 / 5 march '21
    "%d %B, %Y",  # 5th of March, 2021
    "%A, %B %d, %Y",  # Friday, March 5, 2021
    "%A %d %B %Y",  # Friday 5th March 2021
    "%a %d %b %Y",  # Fri 5 Mar 2021
    "%a, %b %d, %Y",  # Fri, Mar 5, 2021
    "%b %d %Y",  # Mar 5 2021
    "%b %d, %Y",  # Mar. 5, 2021 / Mar 05, 2021 / mar 5, '21
    "%d %b %Y",  # 05 Mar 2021 / 5 MAR 2021
    "%d-%b-%Y",  # 5-Mar-2021
    "%Y %B %d",  # 2021 March 5
    "%Y/%m/%d",  # 2021/03/05
    "%m/%d/%Y",  # 3/5/2021, 03/05/2021, 3/5/21 (after year expansion)
)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_dates", GENERATOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_dates() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def sample_pairs(make_dates: ModuleType) -> list[tuple[str, str]]:
    return make_dates.generate_pairs(500, 1234)


def expand_year(two_digits: str) -> str:
    # The corpus rule: 50-99 -> 19xx, 00-49 -> 20xx. (strptime's %y uses a
    # different pivot, 69, so it cannot be used here.)
    return ("19" if int(two_digits) >= 50 else "20") + two_digits


def normalize_source(source: str) -> str:
    """Rewrite a source into something the plain PATTERNS can parse."""
    text = re.sub(r"^the ", "", source, flags=re.IGNORECASE)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(r" of ", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"([A-Za-z])\.", r"\1", text)  # "Mar." -> "Mar"
    text = re.sub(r"'(\d\d)$", lambda m: expand_year(m.group(1)), text)
    # Only the US M/D/YY form ends in a two-digit year after a slash.
    text = re.sub(
        r"^(\d{1,2}/\d{1,2}/)(\d\d)$", lambda m: m.group(1) + expand_year(m.group(2)), text
    )
    return text


def parse_source(source: str) -> set[datetime.date]:
    """Every date that some known pattern reads from ``source``."""
    text = normalize_source(source)
    dates = set()
    for pattern in PATTERNS:
        try:
            dates.add(datetime.datetime.strptime(text, pattern).date())
        except ValueError:
            continue
    return dates


def named_weekday(source: str) -> int | None:
    """The weekday (Monday = 0) a source names, or None if it names none."""
    for word in re.findall(r"[a-z]+", source.lower()):
        for index, name in enumerate(WEEKDAYS):
            if word in (name, name[:3]):
                return index
    return None


# --- (a) determinism -------------------------------------------------------


def test_same_seed_gives_identical_pairs(make_dates: ModuleType) -> None:
    assert make_dates.generate_pairs(300, 7) == make_dates.generate_pairs(300, 7)


def test_different_seed_gives_different_pairs(make_dates: ModuleType) -> None:
    assert make_dates.generate_pairs(300, 7) != make_dates.generate_pairs(300, 8)


def test_generate_pairs_returns_requested_count(make_dates: ModuleType) -> None:
    assert len(make_dates.generate_pairs(123, 0)) == 123


# --- (b) every pair is correct ---------------------------------------------


def test_targets_are_iso_dates_in_range(sample_pairs: list[tuple[str, str]]) -> None:
    for _, target in sample_pairs:
        date = datetime.date.fromisoformat(target)
        assert date.isoformat() == target  # zero-padded YYYY-MM-DD, nothing else
        assert FIRST_DATE <= date <= LAST_DATE


def test_sources_denote_their_targets(sample_pairs: list[tuple[str, str]]) -> None:
    for source, target in sample_pairs:
        # Non-empty and agreeing: one reading only, and it is the target.
        assert parse_source(source) == {datetime.date.fromisoformat(target)}, source


def test_weekday_names_match_the_date(sample_pairs: list[tuple[str, str]]) -> None:
    checked = 0
    for source, target in sample_pairs:
        weekday = named_weekday(source)
        if weekday is not None:
            assert weekday == datetime.date.fromisoformat(target).weekday(), source
            checked += 1
    assert checked > 0  # the sample must actually contain weekday formats


def test_every_format_round_trips_on_tricky_dates(make_dates: ModuleType) -> None:
    tricky = [
        datetime.date(1950, 1, 1),  # first day; '50 -> 1950
        datetime.date(1999, 12, 31),
        datetime.date(2000, 2, 29),  # leap day; '00 -> 2000
        datetime.date(2049, 12, 31),  # last day; '49 -> 2049
        datetime.date(2021, 3, 5),  # day <= 12: M/D order matters
        datetime.date(2011, 5, 2),  # 2nd, and "May" is not abbreviated
        datetime.date(1983, 6, 3),  # 3rd
        datetime.date(1987, 9, 11),  # 11th, not 11st
        datetime.date(1992, 8, 12),  # 12th, not 12nd
        datetime.date(2033, 7, 13),  # 13th, not 13rd
        datetime.date(1965, 10, 21),  # 21st
        datetime.date(2040, 11, 22),  # 22nd
        datetime.date(1977, 4, 23),  # 23rd
    ]
    assert 20 <= len(make_dates.FORMATS) <= 30
    for render in make_dates.FORMATS:
        for date in tricky:
            source = render(date)
            assert parse_source(source) == {date}, source
            weekday = named_weekday(source)
            assert weekday in (None, date.weekday()), source


def test_ordinal_suffixes(make_dates: ModuleType) -> None:
    expected = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th"}
    expected |= {13: "13th", 21: "21st", 22: "22nd", 23: "23rd", 30: "30th", 31: "31st"}
    for day, text in expected.items():
        assert make_dates.ordinal(day) == text


def test_sources_are_clean(sample_pairs: list[tuple[str, str]]) -> None:
    for source, target in sample_pairs:
        assert source and target
        assert "\t" not in source and "\n" not in source
        assert source == source.strip()
        assert len(source) < 40, source


def test_two_digit_years_cover_both_centuries(make_dates: ModuleType) -> None:
    years = set()
    for source, target in make_dates.generate_pairs(2000, 3):
        if re.search(r"('\d\d|^\d{1,2}/\d{1,2}/\d\d)$", source):
            years.add(target[:2])
    assert years == {"19", "20"}


# --- (c) the bundled file ---------------------------------------------------


def test_bundled_corpus_matches_generator(make_dates: ModuleType) -> None:
    pairs = make_dates.generate_pairs(25_000, 0)
    expected = "".join(f"{source}\t{target}\n" for source, target in pairs)
    actual = CORPUS_PATH.read_bytes()
    # Compare bytes, so CRLF or a BOM would be caught too.
    assert actual == expected.encode("utf-8"), (
        "data/dates.tsv differs from its generator; regenerate it with `python data/make_dates.py`"
    )


def test_bundled_corpus_shape() -> None:
    lines = CORPUS_PATH.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 20_000
    for number, line in enumerate(lines, start=1):
        assert line.count("\t") == 1, f"line {number}: {line!r}"
        source, target = line.split("\t")
        assert source and target, f"line {number}: {line!r}"
