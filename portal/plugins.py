"""The plugin manager: built-in steps and third-party packages load through the same hooks."""

from __future__ import annotations

import importlib
from functools import cache

import pluggy

from portal import hookspecs
from portal.settings import Settings
from portal.steps import StepSpec

ENTRY_POINT_GROUP = "portal.plugins"

# Registered like any installed plugin (Datasette's DEFAULT_PLUGINS pattern).
DEFAULT_PLUGINS = (
    "portal_policy.plugin",
    "portal_contact.plugin",
    "portal_testimonial.plugin",
    "portal_signature.plugin",
)


def get_plugin_manager(settings: Settings | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("portal")
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def collect_steps(pm: pluggy.PluginManager, settings: Settings) -> list[StepSpec]:
    steps = [step for group in pm.hook.portal_steps(settings=settings) for step in group]
    keys = [step.key for step in steps]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise RuntimeError(f"two plugins declare the step(s) {sorted(duplicates)}")
    return sorted(steps, key=lambda step: (step.order, step.key))


@cache
def load_all_models() -> None:
    """Import every table, the host's and each plugin's, so SQLModel.metadata is complete."""
    import portal.api.keys
    import portal.audit
    import portal.audit_chain
    import portal.changes
    import portal.fhir.bulk.models
    import portal.models
    import portal.outbox
    import portal.staff.attestations
    import portal.staff.models
    import portal.webhooks.models  # noqa: F401

    pm = get_plugin_manager()
    pm.hook.portal_models()
