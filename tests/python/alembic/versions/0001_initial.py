"""initial: every table of the contract, as the models say

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    from models import Base

    Base.metadata.create_all(op.get_bind())


def downgrade():
    from models import Base

    Base.metadata.drop_all(op.get_bind())
