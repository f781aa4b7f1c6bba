from missionlink.adapters.db.core_tables import core_metadata
from missionlink.migrations.env_common import run

run(core_metadata)
