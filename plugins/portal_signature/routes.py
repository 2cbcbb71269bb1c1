"""GET /onboarding/receipt.pdf: the client's copy of what they signed, for their session only."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal import audit
from portal.db import transaction, utcnow
from portal.models import EnrollmentStatus
from portal.routes.journey import load
from portal.runtime import runtime
from portal.templating import render
from portal_signature.receipt import NoSignedAcknowledgement, build_receipt_data, filename
from portal_signature.receipt_pdf import ReceiptData, render_receipt


async def download_receipt(request: Request) -> Response:
    rt = runtime(request)

    def work() -> ReceiptData | str | None:
        with transaction(rt.engine) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return None
            if journey.enrollment.status != EnrollmentStatus.COMPLETE:
                return "/onboarding"
            ctx = journey.ctx
            try:
                data = build_receipt_data(db, ctx.enrollment, ctx.practice, ctx.journey_summary)
            except NoSignedAcknowledgement:
                return "/onboarding"
            audit.record(
                db,
                ctx.actor,
                "receipt.downloaded",
                "acknowledgement",
                data.reference,
                ctx.meta,
                enrollment_id=ctx.enrollment.id,
                policy_version=data.policy_version,
            )
            return data

    result = await run_in_threadpool(work)
    if result is None:
        return render(request, "links/no_session.html", {}, status_code=401)
    if isinstance(result, str):
        # Not signed yet: back to the step still to do, which explains what is missing.
        return RedirectResponse(result, status_code=303)
    # Rendered after the transaction ends: SQLite holds its write lock for a whole transaction.
    pdf = await run_in_threadpool(render_receipt, result)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename(result)}"',
            "Cache-Control": "no-store",
            "Vary": "Cookie",
        },
    )


routes = [Route("/onboarding/receipt.pdf", download_receipt, methods=["GET"])]
