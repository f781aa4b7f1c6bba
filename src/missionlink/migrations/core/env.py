import missionlink.adapters.db.board_tables  # noqa: F401  (registers the board tables)
from missionlink.adapters.db.core_tables import core_metadata
from missionlink.migrations.env_common import run

run(core_metadata)
