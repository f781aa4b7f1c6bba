from missionlink.adapters.db.identity_tables import identity_metadata
from missionlink.migrations.env_common import run

run(identity_metadata)
