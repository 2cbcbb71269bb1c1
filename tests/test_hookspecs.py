"""The plugin host: documented hooks, and a third-party step registered like the built-ins."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from helpers import start_journey
from starlette.testclient import TestClient

from portal import hookspecs
from portal.app import create_app
from portal.db import transaction
from portal.hookspecs import hookimpl
from portal.models import Practice
from portal.plugins import DEFAULT_PLUGINS, get_plugin_manager
from portal.settings import Settings
from portal.steps import StepContext, StepOutcome, StepSpec, SummaryItem

HOOKS = [
    (name, fn)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("portal_")
]


def test_there_are_hooks() -> None:
    assert {name for name, _ in HOOKS} >= {"portal_steps", "portal_models", "portal_routes"}


@pytest.mark.parametrize(("name", "spec"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hook_is_documented(name: str, spec: Any) -> None:
    doc = inspect.getdoc(spec) or ""
    assert len(doc.splitlines()[0]) > 10, f"{name} has no summary line"
    assert "Returns:" in doc, f"{name} does not document its return value"
    assert "firstresult" in doc, f"{name} does not say whether it is firstresult"
    for parameter in inspect.signature(spec).parameters:
        assert f"``{parameter}``" in doc, f"{name} does not document its argument {parameter}"


def test_built_in_plugins_implement_only_declared_hooks() -> None:
    pm = get_plugin_manager()
    names = {pm.get_name(plugin) for plugin in pm.get_plugins()}
    assert set(DEFAULT_PLUGINS) <= names
    pm.check_pending()  # raises on a hookimpl without a spec


class NoteStep:
    """A third-party step: asks for a favourite colour. Stores nothing, for the test only."""

    def __init__(self) -> None:
        self.done: set[str] = set()

    def is_complete(self, ctx: StepContext) -> bool:
        return ctx.enrollment.id in self.done

    def context(self, ctx: StepContext) -> dict[str, Any]:
        return {}

    def submit(self, ctx: StepContext, form: Mapping[str, str], action: str) -> StepOutcome:
        if not form.get("colour"):
            return StepOutcome(errors={"colour": "Pick a colour."})
        self.done.add(ctx.enrollment.id)
        return StepOutcome(done=True)

    def summary(self, ctx: StepContext) -> list[SummaryItem]:
        return [SummaryItem("Colour", ("chosen",))]

    def demo_fill(self, ctx: StepContext) -> None:
        self.done.add(ctx.enrollment.id)


class ThirdPartyPlugin:
    @hookimpl
    def portal_steps(self, settings: Settings) -> list[StepSpec]:
        return [
            StepSpec(
                key="colour",
                title="Colour",
                order=1,
                template="policy/step.html",
                handler=NoteStep(),
            )
        ]


@pytest.fixture
def third_party(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThirdPartyPlugin]:
    plugin = ThirdPartyPlugin()
    original = get_plugin_manager

    def with_plugin(settings: Settings | None = None):  # type: ignore[no-untyped-def]
        pm = original(settings)
        pm.register(plugin, name="third-party-test")
        return pm

    monkeypatch.setattr("portal.app.get_plugin_manager", with_plugin)
    yield plugin


def test_a_registered_plugin_step_joins_the_wizard(
    third_party: ThirdPartyPlugin, settings: Settings
) -> None:
    app = create_app(settings)
    rt = app.state.runtime
    assert next(step.key for step in rt.wizard.steps) == "colour"
    with transaction(rt.engine) as db:
        db.add(Practice(name="Harbor Light Counseling"))
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        start_journey(client, rt)
        assert client.get("/onboarding").headers["location"] == "/onboarding/colour"
    rt.engine.dispose()


def test_a_package_with_an_entry_point_is_loaded_like_the_built_ins(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The path third parties take: an installed distribution naming a module in the
    `portal.plugins` entry-point group."""
    package = tmp_path / "colour_step_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from portal.hookspecs import hookimpl\n"
        "from portal.steps import StepSpec\n"
        "from test_hookspecs import NoteStep\n\n"
        "@hookimpl\n"
        "def portal_steps(settings):\n"
        "    return [StepSpec(key='colour', title='Colour', order=1,\n"
        "                     template='policy/step.html', handler=NoteStep())]\n"
    )
    dist = tmp_path / "colour_step_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: colour-step-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[portal.plugins]\ncolour = colour_step_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = get_plugin_manager()
    assert pm.get_plugin("colour") is not None
    from portal.plugins import collect_steps
    from portal.settings import Settings as S

    steps = collect_steps(pm, S(demo=True, _env_file=None))  # type: ignore[call-arg]
    assert steps[0].key == "colour"
    assert {s.key for s in steps} >= {"policy", "contact", "testimonial", "sign"}
