"""The outbox keeps each message as the bytes that go on the wire (serialised once).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from picture.common.outbox import migrate_envelope_to_payload, migrate_payload_to_envelope

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "orchestrator"


def upgrade() -> None:
    for statement in migrate_envelope_to_payload(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for statement in migrate_payload_to_envelope(SCHEMA):
        op.execute(statement)
