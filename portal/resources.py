"""Where packaged files live, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"none of {[str(c) for c in candidates]} exists")


def templates_dir() -> Path:
    # The wheel force-includes the repository's templates/ as portal/templates.
    return _first_existing(_PACKAGE / "templates", _PACKAGE.parent / "templates")


def migrations_dir() -> Path:
    return _first_existing(_PACKAGE / "migrations", _PACKAGE.parent / "alembic")


def static_dir() -> Path:
    return _PACKAGE / "static"
