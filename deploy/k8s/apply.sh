#!/usr/bin/env bash
# Deploy one environment in order: settings and secrets, then the migration Job (awaited),
# then the API and the worker. Usage: deploy/k8s/apply.sh dev|staging|prod
# Needs kubectl with a context on the environment's cluster (the AWS Load Balancer
# Controller, External Secrets and the Prometheus adapter installed).
set -euo pipefail

ENVIRONMENT="${1:?usage: deploy/k8s/apply.sh dev|staging|prod}"
K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NS=missionlink
RENDERED="$(mktemp)"
trap 'rm -f "$RENDERED"' EXIT

kubectl kustomize "$K8S_DIR/overlays/$ENVIRONMENT" >"$RENDERED"

echo "== 1/3 namespace, settings, service account, secrets"
kubectl apply -f "$RENDERED" -l app.kubernetes.io/component=config
kubectl -n "$NS" wait --for=condition=Ready externalsecret/missionlink --timeout=2m

echo "== 2/3 migrations"
# A Job's pod template cannot change: the previous run goes before the new image's.
kubectl -n "$NS" delete job missionlink-migrate --ignore-not-found --wait=true
kubectl apply -f "$RENDERED" -l app.kubernetes.io/component=migrate
if ! kubectl -n "$NS" wait --for=condition=complete job/missionlink-migrate --timeout=15m; then
  kubectl -n "$NS" logs job/missionlink-migrate --tail=100 || true
  echo "migrations did not complete: the API and the worker were not rolled out" >&2
  exit 1
fi

echo "== 3/3 API, worker, service, ingress, autoscaling, policies"
kubectl apply -f "$RENDERED"
kubectl -n "$NS" rollout status deployment/missionlink-api --timeout=10m
kubectl -n "$NS" rollout status deployment/missionlink-worker --timeout=10m
