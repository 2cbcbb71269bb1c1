"""What an onboarding step is, as the wizard engine sees it.

The engine knows steps, their order, whether each is complete, and where to resume. What a step
asks and stores is the plugin's business.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlmodel import Session

from portal.audit import Actor, RequestMeta
from portal.mail_templates import MailRenderer
from portal.models import Client, Enrollment, Practice
from portal.outbox import Mail
from portal.settings import Settings


@dataclass
class StepContext:
    """Everything a step handler may use; the engine owns the transaction around it."""

    db: Session
    settings: Settings
    practice: Practice
    client: Client
    enrollment: Enrollment
    meta: RequestMeta
    now: datetime
    url_for: Callable[[str], str]  # absolute public URL for a path
    send_mail: Callable[[Mail], None]  # enqueue in this same transaction
    mail: MailRenderer  # renders templates/email/NAME.txt into a Mail
    # Every step's summary, in step order, as the records stood at a time (None: now). Receipts
    # pass the signing time so a copy made later shows what was signed. Set by the runtime.
    journey_summary: Callable[[datetime | None], list[SummaryItem]] = field(
        default=lambda as_of: []
    )
    # When set, `summary` describes the client's records as they stood at this time.
    as_of: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor("client", self.enrollment.id)


@dataclass
class StepOutcome:
    """The result of a POST to a step.

    `errors` maps field names to messages (shown next to the field); `values` are the entries to
    re-render with. `done` moves the client on; otherwise the step page is shown again, with
    `notice` if given (e.g. "Signature saved. Next signer, please.").
    """

    done: bool = False
    stored: bool = False  # something was written (so a replay of this form must not count)
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class SummaryItem:
    """One line of "what you chose", for the completion page and the receipt."""

    heading: str
    lines: tuple[str, ...]


class StepHandler(Protocol):
    def is_complete(self, ctx: StepContext) -> bool:
        """True when the client has done everything this step requires."""
        ...

    def context(self, ctx: StepContext) -> dict[str, Any]:
        """Template variables for showing the step (current values, options)."""
        ...

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        """Validate and store a submission. Must not write anything when returning errors."""
        ...

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        """The client's choices in plain words (as of ``ctx.as_of`` when it is set)."""
        ...

    def demo_fill(self, ctx: StepContext) -> None:
        """Complete the step with plausible answers, for `portal demo` data."""
        ...


@runtime_checkable
class BatchCompletion(Protocol):
    """Optional for a step handler: `is_complete` for many journeys in one query per step, so
    the API's records (a page of 500, or one client) don't ask each step once per client."""

    def complete_among(self, db: Session, enrollment_ids: Collection[str]) -> set[str]:
        """The ids among `enrollment_ids` whose journey has completed this step: exactly those
        for which `is_complete` would answer True now."""
        ...


@dataclass(frozen=True)
class StepSpec:
    key: str  # URL segment: /onboarding/{key}
    title: str  # shown in the progress list
    order: int  # ascending; built-ins use 100, 200, ...
    template: str  # the step's form body, a partial included inside "wizard/step.html"
    handler: StepHandler
    # Called once, in the transaction that completes the journey (e.g. to email a receipt).
    on_journey_complete: Callable[[StepContext], None] | None = None
