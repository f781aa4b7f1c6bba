#!/bin/sh
# Runs `missionlink <command>`. A file /run/secrets/MISSIONLINK_<NAME> (a Compose or
# Swarm secret) becomes the setting MISSIONLINK_<NAME>, so secrets need not be plain
# environment values; a variable already set wins.
set -eu
for file in /run/secrets/MISSIONLINK_*; do
  [ -f "$file" ] || continue
  name="${file##*/}"
  if [ -z "$(printenv "$name" || true)" ]; then
    value="$(cat "$file")"
    export "$name=$value"
  fi
done
exec missionlink "$@"
