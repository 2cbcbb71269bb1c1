"""Outgoing webhooks: a signed POST to an EHR on each change, from the change log (the outbox)."""
