#!/bin/sh
# Writes the secrets compose.yaml mounts (deploy/compose/secrets/, never committed):
# random database passwords and an Ed25519 key that signs the API's tokens (shared by
# both API processes). Existing files are kept; delete one to make it anew.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 0700 "$dir"
for name in postgres_password core_db_password identity_db_password grafana_admin_password; do
  if [ ! -s "$dir/$name" ]; then
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/$name"
  fi
done
if [ ! -s "$dir/jwt_private_key" ]; then
  openssl genpkey -algorithm ed25519 -out "$dir/jwt_private_key"
fi
# Alertmanager's Slack incoming-webhook URLs: a placeholder that delivers nowhere until
# the real URL (one per channel: pages, warnings) is written over it.
for name in slack_pages_webhook_url slack_warnings_webhook_url; do
  if [ ! -s "$dir/$name" ]; then
    printf '%s' "https://hooks.slack.com/services/REPLACE/WITH/YOUR-WEBHOOK" >"$dir/$name"
  fi
done
# The containers run as other users than this one: the files are readable, the folder
# (0700) keeps other local users out.
chmod 0644 "$dir"/postgres_password "$dir"/core_db_password "$dir"/identity_db_password \
  "$dir"/jwt_private_key "$dir"/grafana_admin_password "$dir"/slack_pages_webhook_url \
  "$dir"/slack_warnings_webhook_url
echo "secrets in $dir"
