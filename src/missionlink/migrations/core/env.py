# Importing them registers the board and payout tables with the core's metadata.
from missionlink.adapters.db import board_tables, payout_tables  # noqa: F401
from missionlink.adapters.db.core_tables import core_metadata
from missionlink.migrations.env_common import run

run(core_metadata)
