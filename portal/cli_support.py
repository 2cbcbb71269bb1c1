"""What every command needs: settings from the environment, explained when they are wrong."""

from __future__ import annotations

from functools import cache

import click
from pydantic import ValidationError

from portal.migrations import SchemaNotCurrent, check_current
from portal.runtime import Runtime
from portal.settings import Settings


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise click.ClickException(f"Configuration problem: {problems}") from None


@cache
def open_runtime(check_schema: bool = True) -> Runtime:
    from portal.app import build_runtime

    rt = build_runtime(load_settings())
    if check_schema:
        try:
            check_current(rt.settings, rt.engine)
        except SchemaNotCurrent as exc:
            raise click.ClickException(str(exc)) from None
    return rt
