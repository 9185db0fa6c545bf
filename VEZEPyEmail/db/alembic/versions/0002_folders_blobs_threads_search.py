"""folders, raw-message blobs, threads and full-text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPECIAL_FOLDERS = (
    ("INBOX", "inbox"),
    ("Sent", "sent"),
    ("Drafts", "drafts"),
    ("Junk", "junk"),
    ("Trash", "trash"),
    ("Archive", "archive"),
)


def upgrade() -> None:
    op.create_table(
        "folders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mailbox_id",
            sa.Integer(),
            sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("special_use", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("mailbox_id", "name", name="uq_folders_mailbox_name"),
    )
    # Existing mailboxes get their special folders.
    for name, special_use in SPECIAL_FOLDERS:
        op.execute(
            sa.text(
                "INSERT INTO folders (mailbox_id, name, special_use, created_at) "
                "SELECT id, :name, :special_use, created_at FROM mailboxes"
            ).bindparams(name=name, special_use=special_use)
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("blob_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cc_addrs", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("in_reply_to", sa.String(998), nullable=True))
        batch.add_column(
            sa.Column("references_header", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("thread_id", sa.String(998), nullable=True))
        batch.add_column(
            sa.Column("has_attachments", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("envelope_from", sa.String(320), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("auth_results", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_messages_mailbox_thread", "messages", ["mailbox_id", "thread_id"])
    op.create_index(
        "uq_messages_mailbox_message_id",
        "messages",
        ["mailbox_id", "message_id_header"],
        unique=True,
        sqlite_where=sa.text("message_id_header IS NOT NULL"),
        postgresql_where=sa.text("message_id_header IS NOT NULL"),
    )
    _create_search_index()


def _create_search_index() -> None:
    """Full-text search: an external-content FTS5 table on SQLite, a GIN index on PostgreSQL."""
    if op.get_bind().dialect.name == "sqlite":
        columns = "subject, from_addr, to_addrs, body_text"
        new = "new.id, new.subject, new.from_addr, new.to_addrs, new.body_text"
        old = "old.id, old.subject, old.from_addr, old.to_addrs, old.body_text"
        # Fixed column lists, no input: S608 does not apply.
        add = f"INSERT INTO messages_fts(rowid, {columns}) VALUES ({new});"  # noqa: S608
        remove = (
            f"INSERT INTO messages_fts(messages_fts, rowid, {columns}) VALUES ('delete', {old});"  # noqa: S608
        )
        op.execute(
            f"CREATE VIRTUAL TABLE messages_fts USING fts5({columns}, content='messages', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {add} END")
        op.execute(
            f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {remove} END"
        )
        op.execute(
            f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF {columns} ON messages "
            f"BEGIN {remove} {add} END"
        )
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    else:
        op.execute(
            "CREATE INDEX ix_messages_search ON messages USING GIN (to_tsvector('simple', "
            "coalesce(subject, '') || ' ' || coalesce(from_addr, '') || ' ' || "
            "coalesce(to_addrs, '') || ' ' || coalesce(body_text, '')))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.drop_index("uq_messages_mailbox_message_id", table_name="messages")
    op.drop_index("ix_messages_mailbox_thread", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in (
            "auth_results",
            "envelope_from",
            "has_attachments",
            "thread_id",
            "references_header",
            "in_reply_to",
            "cc_addrs",
            "blob_key",
        ):
            batch.drop_column(column)
    op.drop_table("folders")
