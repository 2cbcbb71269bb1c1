"""The admin's policy draft: rendered for the preview, checked, and compared with the published
version. Nothing here writes; publishing goes through `publishing.publish_new_version`."""

from __future__ import annotations

from dataclasses import dataclass

from portal.models import Practice
from portal_policy import changes, service
from portal_policy.changes import PolicyChanges
from portal_policy.models import PolicyVersion
from portal_policy.rendering import (
    PolicyTemplateError,
    RenderedPolicy,
    missing_details,
    render_policy,
)

MAX_SOURCE_CHARS = 60_000


@dataclass(frozen=True)
class Draft:
    source: str
    rendered: RenderedPolicy | None
    problem: str | None  # why it cannot be published as it stands, in words for the admin
    changes: PolicyChanges | None  # against `current`, when both exist

    @property
    def publishable(self) -> bool:
        return self.rendered is not None and self.problem is None


def normalise(raw: str) -> str:
    # Browsers send CRLF from a textarea; the renderer normalises too, this keeps the echo tidy.
    return raw.replace("\r\n", "\n").replace("\r", "\n")


def evaluate(source: str, practice: Practice | None, current: PolicyVersion | None) -> Draft:
    """Render `source` with the practice's saved details and say what stands in the way."""
    if practice is None:
        return Draft(source, None, "Save the practice's details first.", None)
    if len(source) > MAX_SOURCE_CHARS:
        limit = f"{MAX_SOURCE_CHARS:,}"
        return Draft(source, None, f"The policy is too long: {limit} characters at most.", None)
    details = service.practice_details(practice)
    try:
        rendered = render_policy(source, details)
    except PolicyTemplateError as exc:
        return Draft(source, None, str(exc), None)
    diff = changes.from_version(current, rendered) if current is not None else None
    missing = missing_details(source, details)
    if missing:
        names = ", ".join(sorted(service.LABELS.get(name, name) for name in missing))
        problem = (
            f"The policy uses practice details that are blank: {names}. "
            "Fill them in under Practice details first."
        )
    elif current is not None and current.content_hash == rendered.content_hash:
        problem = (
            f"This text is identical to the published version {current.version}: "
            "there is nothing new to publish."
        )
    else:
        problem = None
    return Draft(source, rendered, problem, diff)
