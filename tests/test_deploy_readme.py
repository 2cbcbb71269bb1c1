"""The README's configuration table is the reference an operator reads: it must name every
`PORTAL_` setting that exists, no setting that does not, and each one's real default."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from portal.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Running it in production"


def production_section() -> str:
    text = README.read_text()
    assert SECTION in text, f"README has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1]
    return re.split(r"^## ", body, maxsplit=1, flags=re.MULTILINE)[0]


def configuration_table() -> dict[str, str]:
    """Variable name -> its Default cell, from the table whose header starts with Variable."""
    lines = production_section().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Variable |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    assert header[:3] == ["Variable", "Default", "Required"], header
    rows: dict[str, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = re.findall(r"`(PORTAL_[A-Z0-9_]+)`", cells[0])
        assert len(names) == 1, f"one variable per row: {line}"
        assert names[0] not in rows, f"{names[0]} appears twice"
        assert all(cells[1:3]), f"{names[0]}: default and required must be filled in"
        rows[names[0]] = cells[1]
    return rows


def shown(value: object) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_table_names_every_setting_and_nothing_else() -> None:
    documented = set(configuration_table())
    existing = {f"PORTAL_{name.upper()}" for name in Settings.model_fields}
    assert not existing - documented, f"missing from the README: {sorted(existing - documented)}"
    assert not documented - existing, f"not settings: {sorted(documented - existing)}"


def test_the_table_gives_each_setting_its_real_default() -> None:
    table = configuration_table()
    for name, field in Settings.model_fields.items():
        cell = table[f"PORTAL_{name.upper()}"]
        if field.default_factory is not None or field.default is None:
            assert cell.startswith(("none", "unset")), f"PORTAL_{name.upper()}: {cell}"
        else:
            assert f"`{shown(field.default)}`" in cell, f"PORTAL_{name.upper()}: {cell}"
