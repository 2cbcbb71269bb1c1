"""Email the receipt when the journey completes, only to an address the client allowed."""

from __future__ import annotations

import dataclasses

from portal import audit
from portal.steps import StepContext
from portal_signature.receipt import NoSignedAcknowledgement, build_receipt_data, filename
from portal_signature.receipt_pdf import render_receipt


def allowed_address(ctx: StepContext) -> str | None:
    """The address the client allowed for administrative mail, or None."""
    try:
        from portal_contact.service import allows_email
    except ImportError:
        # Without the contact plugin nobody allowed email, so nothing is sent.
        return None
    return allows_email(ctx.db, ctx.enrollment.id)


def email_receipt(ctx: StepContext) -> None:
    """StepSpec.on_journey_complete: queue the PDF in the transaction that completes the journey."""
    to = allowed_address(ctx)
    if not to:
        return
    try:
        data = build_receipt_data(ctx.db, ctx.enrollment, ctx.practice, ctx.journey_summary)
    except NoSignedAcknowledgement:
        return
    mail = ctx.mail.render(
        "receipt",
        purpose="receipt",
        to=to,
        subject=f"{ctx.practice.name}: your signed acknowledgement",
        practice=ctx.practice,
        client=ctx.client,
        policy_title=data.policy_title,
        policy_version=data.policy_version,
        reference=data.reference,
        resume_url=ctx.url_for("/link"),
    )
    name = filename(data)
    ctx.send_mail(dataclasses.replace(mail, attachment_name=name, attachment=render_receipt(data)))
    audit.record(
        ctx.db,
        ctx.actor,
        "receipt.emailed",
        "acknowledgement",
        data.reference,
        ctx.meta,
        enrollment_id=ctx.enrollment.id,
        policy_version=data.policy_version,
    )
