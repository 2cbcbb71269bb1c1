"""What changed between two versions of the policy: by section, and line by line.

Both views compare the rendered plain text (what a client actually reads and what the hash
covers), so a new practice phone number shows up as a change even when the Markdown did not.
Pure functions: callers pass texts and section titles in.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from portal_policy.models import PolicyVersion
from portal_policy.rendering import RenderedPolicy

INTRODUCTION = "The introduction"
# A rewrite from scratch would list every line twice; past this the page says how many more.
MAX_DIFF_LINES = 400


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added" or "removed": spelled out on the page, never shown by colour alone
    text: str


@dataclass(frozen=True)
class DiffHunk:
    section: str  # the section's title; "" for the introduction (with the title line)
    status: str  # "changed", "added" (a new section) or "removed" (a section taken out)
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class SectionChanges:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class PolicyChanges:
    since_version: int | None  # the version compared against
    sections: SectionChanges
    hunks: tuple[DiffHunk, ...]
    lines_not_shown: int = 0

    @property
    def identical(self) -> bool:
        return not self.hunks and not self.lines_not_shown


@dataclass(frozen=True)
class _Part:
    key: tuple[str, int]  # (title, occurrence): titles may repeat
    title: str
    body: tuple[str, ...]


def between(old: PolicyVersion, new: PolicyVersion) -> PolicyChanges:
    """Changes from one published version to another."""
    return compare(
        old.text, _toc_titles(old), new.text, _toc_titles(new), since_version=old.version
    )


def from_version(old: PolicyVersion, draft: RenderedPolicy) -> PolicyChanges:
    """Changes from a published version to a rendered draft."""
    titles = [section.title for section in draft.sections]
    return compare(old.text, _toc_titles(old), draft.text, titles, since_version=old.version)


def _toc_titles(version: PolicyVersion) -> list[str]:
    return [str(entry[1]) for entry in version.toc]


def compare(
    old_text: str,
    old_titles: Sequence[str],
    new_text: str,
    new_titles: Sequence[str],
    *,
    since_version: int | None = None,
) -> PolicyChanges:
    old_parts = _split(old_text.split("\n"), old_titles)
    new_parts = _split(new_text.split("\n"), new_titles)
    hunks, not_shown = _line_diff(old_parts, new_parts)
    return PolicyChanges(
        since_version=since_version,
        sections=_section_changes(old_parts, new_parts),
        hunks=hunks,
        lines_not_shown=not_shown,
    )


def _split(lines: list[str], titles: Sequence[str]) -> list[_Part]:
    """The introduction (with the title), then one part per section heading, in order.

    Headings are matched against the known section titles in order, so a paragraph line that
    happens to start with "## " is not mistaken for a section.
    """
    parts: list[_Part] = []
    seen: dict[str, int] = {}
    title, body = "", list[str]()
    expected = 0
    for line in lines:
        if expected < len(titles) and line == f"## {titles[expected]}":
            parts.append(_part(seen, title, body))
            title, body = titles[expected], []
            expected += 1
            continue
        body.append(line)
    parts.append(_part(seen, title, body))
    return parts


def _part(seen: dict[str, int], title: str, body: list[str]) -> _Part:
    seen[title] = seen.get(title, 0) + 1
    # Blank-line differences are not changes a client needs to hear about.
    kept = tuple(line for line in body if line.strip())
    return _Part((title, seen[title]), title, kept)


def _section_changes(old: list[_Part], new: list[_Part]) -> SectionChanges:
    old_by_key = {part.key: part for part in old}
    new_keys = {part.key for part in new}
    added, changed = [], []
    for part in new:
        before = old_by_key.get(part.key)
        if before is None:
            added.append(part.title)
        elif before.body != part.body:
            changed.append(part.title or INTRODUCTION)
    removed = [part.title for part in old if part.key not in new_keys]
    return SectionChanges(tuple(added), tuple(changed), tuple(removed))


def _line_diff(old: list[_Part], new: list[_Part]) -> tuple[tuple[DiffHunk, ...], int]:
    """Changed lines section by section (new order, then the sections taken out), so every
    line is listed under the section a reader finds it in."""
    old_by_key = {part.key: part for part in old}
    new_keys = {part.key for part in new}
    pairs: list[tuple[_Part | None, _Part | None]]
    pairs = [(old_by_key.get(part.key), part) for part in new]
    pairs += [(part, None) for part in old if part.key not in new_keys]
    hunks: list[DiffHunk] = []
    shown = hidden = 0
    for before, after in pairs:
        lines = _changed_lines(before.body if before else (), after.body if after else ())
        room = max(MAX_DIFF_LINES - shown, 0)
        hidden += max(len(lines) - room, 0)
        lines = lines[:room]
        if not lines:
            continue
        shown += len(lines)
        status = "added" if before is None else "removed" if after is None else "changed"
        part = after or before
        assert part is not None
        hunks.append(DiffHunk(part.title, status, tuple(lines)))
    return tuple(hunks), hidden


def _changed_lines(old: tuple[str, ...], new: tuple[str, ...]) -> list[DiffLine]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    lines: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            lines += [DiffLine("removed", text) for text in old[i1:i2]]
            lines += [DiffLine("added", text) for text in new[j1:j2]]
    return lines
