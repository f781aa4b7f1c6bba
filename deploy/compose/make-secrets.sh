#!/bin/sh
# Writes the secrets compose.yaml mounts (deploy/compose/secrets/, never committed):
# random database passwords and an Ed25519 key that signs the API's tokens (shared by
# both API processes). Existing files are kept; delete one to make it anew.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in postgres_password core_db_password identity_db_password; do
  if [ ! -s "$dir/$name" ]; then
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/$name"
  fi
done
if [ ! -s "$dir/jwt_private_key" ]; then
  openssl genpkey -algorithm ed25519 -out "$dir/jwt_private_key"
fi
# The containers run as other users than this one: the files are readable, the folder
# (0700) keeps other local users out.
chmod 0644 "$dir"/postgres_password "$dir"/core_db_password "$dir"/identity_db_password \
  "$dir"/jwt_private_key
echo "secrets in $dir"
