"""The consent to electronic records and signatures (ESIGN Act, UETA), shown before signing.

The text is versioned: each signature stores the version and a hash of the exact text shown,
so a change of wording is a new DISCLOSURE_VERSION.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from portal.models import Practice

DISCLOSURE_VERSION = "2026-11"

STATEMENT = "I have read this policy, understand it, accept it, and was offered a copy."


@dataclass(frozen=True)
class Disclosure:
    version: str
    paragraphs: tuple[tuple[str, str], ...]  # (heading, text)

    @property
    def text(self) -> str:
        return "\n\n".join(f"{heading}\n{body}" for heading, body in self.paragraphs)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def practice_contact(practice: Practice) -> str:
    """ " by phone at X or by email at Y", or "" when the practice gave neither."""
    ways = []
    if practice.phone:
        ways.append(f"by phone at {practice.phone}")
    if practice.email:
        ways.append(f"by email at {practice.email}")
    return " " + " or ".join(ways) if ways else ""


def in_writing(practice: Practice) -> str:
    return f" (for example by email to {practice.email})" if practice.email else ""


def disclosure(practice: Practice) -> Disclosure:
    name = practice.name
    return Disclosure(
        version=DISCLOSURE_VERSION,
        paragraphs=(
            (
                "What you agree to",
                "You agree to receive this acknowledgement and its records electronically, and "
                "to sign it electronically by typing your full name. Your typed name counts as "
                "your handwritten signature.",
            ),
            (
                "Paper instead, at no charge",
                "You don't have to sign electronically. You can ask for a paper copy of the "
                f"policy and of this acknowledgement at no charge, and sign on paper instead. "
                f"Contact {name}{practice_contact(practice)}.",
            ),
            (
                "Withdrawing your consent",
                "You can withdraw your consent to electronic records and signatures at any "
                f"time by telling {name} in writing{in_writing(practice)}. There is no fee. "
                "Withdrawing doesn't undo what was already signed; from then on the practice "
                "gives you paper copies to sign.",
            ),
            (
                "What it covers",
                f"This acknowledgement of {name}'s social media and communications policy, and "
                "acknowledgements of later updates of this policy. Nothing else.",
            ),
            (
                "What you need",
                "A device that can open PDF files, and a way to save or print them. You'll get "
                "a PDF copy of what you sign when you finish, and you can download it again "
                "later from the link in your email. If your email address changes, tell the "
                "practice.",
            ),
        ),
    )
