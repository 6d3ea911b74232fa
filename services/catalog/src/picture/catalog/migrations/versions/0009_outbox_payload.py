"""The outbox keeps each message as the bytes that go on the wire (serialised once).

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from picture.common.outbox import migrate_envelope_to_payload, migrate_payload_to_envelope

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "catalog"


def upgrade() -> None:
    for statement in migrate_envelope_to_payload(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    for statement in migrate_payload_to_envelope(SCHEMA):
        op.execute(statement)
