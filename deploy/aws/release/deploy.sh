#!/usr/bin/env bash
# Roll one image (by digest) out to one environment; called by .github/workflows/release.yml
# with the environment's release role already assumed:
#
#   deploy/aws/release/deploy.sh <dev|staging|prod> <account>.dkr.ecr.<region>.amazonaws.com/missionlink@sha256:<digest>
#
# 1. migrations run as a one-off task and must exit 0 (before any traffic moves);
# 2. the api goes blue/green through CodeDeploy, which rolls back on failure or alarm;
# 3. the worker rolls through ECS with its circuit breaker and alarms (rollback on either);
# 4. static assets go to the private bucket behind CloudFront.
set -euo pipefail

ENVIRONMENT="${1:?environment (dev, staging or prod)}"
IMAGE="${2:?image reference repository@sha256:digest}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
RENDER=(python3 "$HERE/render_taskdef.py")
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { printf '==> [%s] %s\n' "$ENVIRONMENT" "$*"; }

[[ "$IMAGE" =~ @sha256:[0-9a-f]{64}$ ]] || { echo "P14: deploy by digest, got $IMAGE" >&2; exit 2; }

aws ssm get-parameter --name "/missionlink/$ENVIRONMENT/release" \
  --query Parameter.Value --output text >"$WORK/facts.json"
# fact KEY [SUBKEY]: one value of the release facts (lists come back comma-separated).
fact() {
  python3 - "$WORK/facts.json" "$@" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = value[key]
print(",".join(value) if isinstance(value, list) else value)
PY
}
CLUSTER="$(fact cluster)"

# register FAMILY CONTAINER: newest revision of FAMILY with CONTAINER's image replaced.
register() {
  local family="$1" container="$2"
  aws ecs describe-task-definition --task-definition "$family" --include TAGS \
    >"$WORK/$family.described.json"
  "${RENDER[@]}" --container "$container" --image "$IMAGE" "$WORK/$family.described.json" \
    >"$WORK/$family.json"
  aws ecs register-task-definition --cli-input-json "file://$WORK/$family.json" \
    --query taskDefinition.taskDefinitionArn --output text
}

log "migrations"
MIGRATE_TASKDEF="$(register "$(fact families migrate)" migrate)"
TASK_ARN="$(aws ecs run-task --cluster "$CLUSTER" --task-definition "$MIGRATE_TASKDEF" \
  --launch-type FARGATE --started-by "release-${GITHUB_SHA:-manual}" \
  --network-configuration "awsvpcConfiguration={subnets=[$(fact subnets)],securityGroups=[$(fact security_group)],assignPublicIp=DISABLED}" \
  --query 'tasks[0].taskArn' --output text)"
aws ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$TASK_ARN"
EXIT_CODE="$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK_ARN" \
  --query "tasks[0].containers[?name=='migrate'].exitCode | [0]" --output text)"
if [[ "$EXIT_CODE" != "0" ]]; then
  echo "migrations failed (exit code $EXIT_CODE); nothing was shifted" >&2
  aws logs get-log-events --log-group-name "$(fact migrate_log_group)" \
    --log-stream-name "migrate/migrate/${TASK_ARN##*/}" --limit 50 \
    --query 'events[].message' --output text >&2 || true
  exit 1
fi

log "api: blue/green through CodeDeploy"
API_TASKDEF="$(register "$(fact families api)" api)"
python3 - "$API_TASKDEF" >"$WORK/revision.json" <<'PY'
import json, sys
appspec = {
    "version": 0.0,
    "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": sys.argv[1],
        "LoadBalancerInfo": {"ContainerName": "api", "ContainerPort": 8000},
    }}}],
}
print(json.dumps({"revisionType": "AppSpecContent",
                  "appSpecContent": {"content": json.dumps(appspec)}}))
PY
DEPLOYMENT="$(aws deploy create-deployment \
  --application-name "$(fact codedeploy_application)" \
  --deployment-group-name "$(fact codedeploy_group)" \
  --revision "file://$WORK/revision.json" \
  --description "release ${GITHUB_REF_NAME:-manual} ${IMAGE##*@}" \
  --query deploymentId --output text)"
log "deployment $DEPLOYMENT"
if ! aws deploy wait deployment-successful --deployment-id "$DEPLOYMENT"; then
  aws deploy get-deployment --deployment-id "$DEPLOYMENT" \
    --query 'deploymentInfo.[status,errorInformation.message,rollbackInfo.rollbackMessage]' \
    --output text >&2
  echo "the api deployment failed and CodeDeploy rolled it back" >&2
  exit 1
fi

log "worker: rolling update with circuit breaker and alarm rollback"
WORKER_TASKDEF="$(register "$(fact families worker)" worker)"
aws ecs update-service --cluster "$CLUSTER" --service "$(fact worker_service)" \
  --task-definition "$WORKER_TASKDEF" --query 'service.deployments[0].id' --output text
aws ecs wait services-stable --cluster "$CLUSTER" --services "$(fact worker_service)"
ROLLOUT="$(aws ecs describe-services --cluster "$CLUSTER" --services "$(fact worker_service)" \
  --query "services[0].deployments[?status=='PRIMARY'].[taskDefinition,rolloutState] | [0]" \
  --output text)"
if [[ "$ROLLOUT" != "$WORKER_TASKDEF"*COMPLETED ]]; then
  echo "the worker deployment did not complete ($ROLLOUT); ECS rolled it back" >&2
  exit 1
fi

log "static assets"
STATIC="$ROOT/src/missionlink/web/static"
if [[ -d "$STATIC" ]]; then
  aws s3 sync "$STATIC" "s3://$(fact static_bucket)/static/" --delete \
    --cache-control "public, max-age=300"
  aws cloudfront create-invalidation --distribution-id "$(fact distribution)" \
    --paths '/static/*' --query Invalidation.Id --output text
fi
log "released ${IMAGE##*@}"
