"""Checks for what people type into the host's own forms: names and email addresses."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

NAME_MAX = 120
EMAIL_MAX = 254
# Includes the typographic apostrophe (U+2019) that phone keyboards put in names.
_NAME_PUNCTUATION = set(" '\u2019.-,()")


def clean_name(raw: str | None, *, label: str = "name") -> tuple[str, str | None]:
    """Return (cleaned name, error message or None)."""
    value = " ".join((raw or "").split())
    if not value:
        return "", f"Please enter the {label}."
    if len(value) > NAME_MAX:
        return value[:NAME_MAX], f"That {label} is too long: {NAME_MAX} characters at most."
    for char in value:
        category = unicodedata.category(char)
        if category[0] in "LM" or char in _NAME_PUNCTUATION:
            continue
        if char in "<>":
            return value, f"The {label} can't contain < or >. Please type it as plain text."
        return value, (
            f"The {label} can only contain letters, spaces, apostrophes, hyphens and periods."
        )
    return value, None


def clean_email(raw: str | None) -> tuple[str, str | None]:
    value = (raw or "").strip()
    if not value:
        return "", "Please enter an email address."
    if len(value) > EMAIL_MAX:
        return value[:EMAIL_MAX], "That email address is too long."
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return value, f"That email address doesn't look right: {exc}"
    return result.normalized, None
