"""Reading the staff forms for what happened outside the portal (the policy discussed in
session, a paper acknowledgement). Pure: never raises, names each problem."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from portal.validation import clean_name

EARLIEST = date(2000, 1, 1)
MAX_PAPER_SIGNERS = 6
NAMES_ECHO_MAX = 1000  # a hostile post can't bloat the re-rendered page
DATE_ECHO_MAX = 20
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def latest_date(now: datetime) -> date:
    """Today where the calendar is furthest ahead (UTC+14). The practice's time zone is not
    known, so only a date later than this is in the future for certain."""
    return (now + timedelta(hours=14)).date()


def parse_date(raw: str | None, now: datetime, *, what: str) -> tuple[date | None, str, str | None]:
    """Returns (date, the entry to re-render, problem). `what` completes "the day ...";
    e.g. "the policy was discussed"."""
    text = (raw or "").strip()
    echo = text[:DATE_ECHO_MAX]
    if not text:
        return None, "", f"Enter the day {what}, as year-month-day, e.g. 2026-03-14."
    if not _ISO_DATE.fullmatch(text):
        return None, echo, "Enter the date as year-month-day, e.g. 2026-03-14."
    try:
        value = date.fromisoformat(text)
    except ValueError:
        return None, echo, "That date doesn't exist. Check the month and the day."
    if value > latest_date(now):
        return None, echo, f"That date is in the future. Enter the day {what}."
    if value < EARLIEST:
        return None, echo, f"That date is before {EARLIEST.year}. Check the year."
    return value, value.isoformat(), None


def parse_version(raw: str | None, published: Sequence[int]) -> tuple[int | None, str | None]:
    text = (raw or "").strip()
    if not text:
        return None, "Choose the policy version."
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or int(text) not in published:
        return None, "Choose one of the published policy versions."
    return int(text), None


def parse_names(raw: str | None) -> tuple[list[str], str, str | None]:
    """One full name per line. Returns (names, the entry to re-render, problem)."""
    text = raw or ""
    echo = text[:NAMES_ECHO_MAX]
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return [], echo, "Enter the full name of each person who signed, one per line."
    if len(lines) > MAX_PAPER_SIGNERS:
        return [], echo, f"List at most {MAX_PAPER_SIGNERS} people, one per line."
    names: list[str] = []
    for number, line in enumerate(lines, start=1):
        name, problem = clean_name(line, label="name")
        if problem:
            where = f"Line {number}: " if len(lines) > 1 else ""
            return [], echo, where + problem
        if name.casefold() in {n.casefold() for n in names}:
            return [], echo, f"{name} is listed twice. List each person once."
        names.append(name)
    return names, "\n".join(names), None
