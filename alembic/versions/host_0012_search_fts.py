"""SQLite: a trigram full-text index for the board's live search (FTS5 table client_search)

The board matches `lower(full_name)` and `lower(email)`: anywhere for three letters or more,
at the start of a word for one or two (see portal/staff/board_search.py). No SQLite B-tree
serves `LIKE '%term%'`, so a term matching few clients walked the whole client table. FTS5's
`trigram` tokenizer indexes every three-character substring; the stored text is what the board
compares (lower-cased the way SQLite's lower() does it, after a leading space, so " ok" finds a
name or an address that starts with "ok"). Triggers keep it in step with every write to
`client`, whoever makes it. PostgreSQL needs nothing: pg_trgm serves the same patterns
(host_0011).

Index rows are numbered by `client_search_key` (client id -> rowid) rather than by the client's
own rowid, which VACUUM may renumber in a table without an INTEGER PRIMARY KEY.

Revision ID: host_0012
Revises: host_0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "host_0012"
down_revision: str | None = "host_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Trigger bodies: constant SQL, no values spliced in.
ADD = (
    "INSERT INTO client_search_key (client_id) VALUES (new.id); "
    "INSERT INTO client_search (rowid, client_id, name, email) VALUES ("
    "(SELECT rowid FROM client_search_key WHERE client_id = new.id), "
    "new.id, ' ' || lower(new.full_name), ' ' || lower(new.email)); "
)
REMOVE = (
    "DELETE FROM client_search WHERE rowid = "
    "(SELECT rowid FROM client_search_key WHERE client_id = old.id); "
    "DELETE FROM client_search_key WHERE client_id = old.id; "
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # Which index row is whose, so a rename replaces one row instead of scanning them all.
    op.execute(
        "CREATE TABLE client_search_key "
        "(rowid INTEGER PRIMARY KEY, client_id VARCHAR(32) NOT NULL UNIQUE)"
    )
    op.execute(
        "CREATE VIRTUAL TABLE client_search USING fts5("
        "client_id UNINDEXED, name, email, tokenize = 'trigram case_sensitive 1')"
    )
    op.execute("INSERT INTO client_search_key (client_id) SELECT id FROM client")
    op.execute(
        "INSERT INTO client_search (rowid, client_id, name, email) "
        "SELECT k.rowid, c.id, ' ' || lower(c.full_name), ' ' || lower(c.email) "
        "FROM client c JOIN client_search_key k ON k.client_id = c.id"
    )
    op.execute(f"CREATE TRIGGER client_search_insert AFTER INSERT ON client BEGIN {ADD}END")
    op.execute(
        "CREATE TRIGGER client_search_update AFTER UPDATE OF id, full_name, email ON client "
        f"BEGIN {REMOVE}{ADD}END"
    )
    op.execute(f"CREATE TRIGGER client_search_delete AFTER DELETE ON client BEGIN {REMOVE}END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in ("client_search_delete", "client_search_update", "client_search_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS client_search")
    op.execute("DROP TABLE IF EXISTS client_search_key")
