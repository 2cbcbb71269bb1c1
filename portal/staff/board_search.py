"""What the board's search box matches, and how an index finds it fast.

- Three letters or more: anywhere in the client's name or email (`lower(x) LIKE '%term%'`).
- One or two letters: the start of a word of the name (after a space or a hyphen) or the
  start of the email. Any two letters occur inside thousands of names; people type the first
  letters of a first or last name.

Both databases answer the same question two ways. `row_condition` checks a row (cheap when
matches are plentiful: walking the board's order finds a page after a few rows).
`condition` first asks an index how many clients match, counting up to `CAP`: SQLite's FTS5
trigram table `client_search` (migration host_0012), PostgreSQL's pg_trgm indexes
(host_0011). When the term matches at most CAP clients, the board sorts just those; when it
matches more, walking the order stops within about PAGE_SIZE * clients / CAP rows. Either
way a page costs about the same whether the term is common, rare, or matches nobody.
"""

from __future__ import annotations

from sqlalchemy import ARRAY, ColumnElement, String, any_, bindparam, func, or_, select, text
from sqlmodel import Session, col

from portal.models import Client, Enrollment

CAP = 500
INDEX_TABLE = "client_search"  # SQLite only; FTS5 adds shadow tables named client_search_*
SHORT = 2  # terms of this many characters or fewer match the start of a word

_NAME = func.lower(col(Client.full_name))
_EMAIL = func.lower(col(Client.email))


def row_condition(term: str) -> ColumnElement[bool]:
    """The search as a condition on Client; `term` is lower-cased and stripped."""
    like = _escape_like(term)
    if len(term) <= SHORT:
        return or_(
            _NAME.like(f"{like}%", escape="\\"),
            _NAME.like(f"% {like}%", escape="\\"),
            _NAME.like(f"%-{like}%", escape="\\"),
            _EMAIL.like(f"{like}%", escape="\\"),
        )
    return or_(_NAME.like(f"%{like}%", escape="\\"), _EMAIL.like(f"%{like}%", escape="\\"))


def condition(db: Session, term: str) -> ColumnElement[bool] | None:
    """The search as a condition for the board's query (on Enrollment joined to Client), the
    way that is fastest for this term; None when it matches nobody. `term` is lower-cased."""
    if db.get_bind().dialect.name == "sqlite":
        return _sqlite_condition(db, term)
    # PostgreSQL: pg_trgm's GIN indexes serve row_condition's patterns, one or more letters.
    ids = list(
        db.execute(select(col(Client.id)).where(row_condition(term)).limit(CAP + 1)).scalars()
    )
    if not ids:
        return None
    if len(ids) > CAP:
        return row_condition(term)
    # One array parameter rather than CAP of them; the planner then starts from these ids.
    return col(Enrollment.client_id) == any_(bindparam("board_ids", ids, ARRAY(String)))


def _sqlite_condition(db: Session, term: str) -> ColumnElement[bool] | None:
    expression = _fts_expression(term)
    if expression is None:  # one letter: no trigram; such a term matches many anyway
        return row_condition(term)
    # Counting index rows by rowid reads no stored text: cheap even when thousands match.
    count = db.execute(_COUNT, {"q": expression, "n": CAP + 1}).scalar_one()
    if count == 0:
        return None
    if count > CAP:
        return row_condition(term)
    return col(Enrollment.client_id).in_(_MATCHING.bindparams(q=expression))


_COUNT = text(
    "SELECT count(*) FROM (SELECT rowid FROM client_search WHERE client_search MATCH :q LIMIT :n)"
)
_MATCHING = text("SELECT client_id FROM client_search WHERE client_search MATCH :q")


def _fts_expression(term: str) -> str | None:
    """`row_condition` as an FTS5 query on client_search, whose columns hold
    ' ' + lower(name) and ' ' + lower(email). A trigram index needs three characters."""
    if len(term) <= SHORT:
        if len(term) < SHORT:
            return None
        word, hyphenated = _phrase(" " + term), _phrase("-" + term)
        return f"name : ({word} OR {hyphenated}) OR email : {word}"
    return "{name email} : " + _phrase(term)


def _phrase(text_: str) -> str:
    return '"' + text_.replace('"', '""') + '"'


def _escape_like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def is_index_table(name: str | None) -> bool:
    """Whether a table is the FTS5 index or one of its shadow tables: made by a migration,
    not by the models, so schema comparisons leave them out."""
    return bool(name) and (name == INDEX_TABLE or str(name).startswith(INDEX_TABLE + "_"))
