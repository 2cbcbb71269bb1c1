"""The testimonial options and where shared words may appear, and how to say them plainly.

Pure data and wording, shared by the step, the withdrawal pages and the receipt summary.
"""

from __future__ import annotations

from collections.abc import Iterable

NO = "no"

# Order matters: the form lists them so, with "no" first and every option the same control.
CHOICES: dict[str, str] = {
    NO: "No",
    "anonymous": "Yes, anonymously: without my name or anything that identifies me",
    "initials": "Yes, with my initials",
    "first_name": "Yes, with my first name",
}

PLACEMENTS: dict[str, str] = {
    "website": "The practice's website",
    "social_media": "The practice's social media pages",
    "print": "Printed materials such as brochures",
}

# How each "yes" is described after the fact ("Yes, anonymously, on: ...").
_YES_WORDS: dict[str, str] = {
    "anonymous": "Yes, anonymously",
    "initials": "Yes, with your initials",
    "first_name": "Yes, with your first name",
}

NO_WORDS = "No: the practice may not share anything you say."


def is_consent(choice: str) -> bool:
    """True for any of the "yes" options."""
    return choice in CHOICES and choice != NO


def ordered_placements(keys: Iterable[str]) -> list[str]:
    """Known placement keys in the canonical order, so stored lists and receipts are stable."""
    wanted = set(keys)
    return [key for key in PLACEMENTS if key in wanted]


def placement_words(keys: Iterable[str]) -> str:
    return ", ".join(PLACEMENTS[key] for key in ordered_placements(keys))


def decision_words(choice: str, placements: Iterable[str]) -> str:
    """One sentence for the summary, the receipt and the withdrawal page."""
    if not is_consent(choice):
        return NO_WORDS
    return f"{_YES_WORDS[choice]}, on: {placement_words(placements)}"
