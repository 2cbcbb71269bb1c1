"""Staff pages: the admin's pages (staff accounts, mail, staff policy) and every staff member's
staff-policy page, gathered from one module per concept."""

from __future__ import annotations

from starlette.routing import BaseRoute

from portal.routes import (
    staff_admin_accounts,
    staff_admin_attest,
    staff_admin_keys,
    staff_admin_mail,
    staff_admin_policy,
    staff_admin_webhooks,
)

routes: list[BaseRoute] = [
    *staff_admin_accounts.routes,
    *staff_admin_mail.routes,
    *staff_admin_policy.routes,
    *staff_admin_attest.routes,
    *staff_admin_keys.routes,
    *staff_admin_webhooks.routes,
]
