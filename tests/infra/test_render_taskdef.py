"""release.yml's task-definition renderer refuses what the deploy APIs reject (P13) and
movable image references (P14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import AWS_DIR, load_module

render_taskdef = load_module("render_taskdef", AWS_DIR / "release" / "render_taskdef.py")

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"333333333333.dkr.ecr.ap-northeast-2.amazonaws.com/missionlink@{DIGEST}"


def described(**overrides: Any) -> dict[str, Any]:
    """What `aws ecs describe-task-definition --include TAGS` prints."""
    task = {
        "taskDefinitionArn": "arn:aws:ecs:ap-northeast-2:333333333333:task-definition/x:7",
        "family": "missionlink-prod-api",
        "revision": 7,
        "status": "ACTIVE",
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "ecs.capability.secrets.asm.environment-variables"}],
        "registeredAt": "2026-11-20T10:00:00+09:00",
        "registeredBy": "arn:aws:sts::333333333333:assumed-role/x",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "1024",
        "memory": "2048",
        "executionRoleArn": "arn:aws:iam::333333333333:role/missionlink-prod-task-execution",
        "taskRoleArn": "arn:aws:iam::333333333333:role/missionlink-prod-api-task",
        "volumes": [{"name": "tmp", "host": {}}],
        "placementConstraints": [],
        "containerDefinitions": [
            {
                "name": "api",
                "image": "333333333333.dkr.ecr.ap-northeast-2.amazonaws.com/missionlink:v1.2.2",
                "portMappings": [{"containerPort": 8000, "protocol": "tcp", "name": "http"}],
                "environment": [{"name": "MISSIONLINK_ENV", "value": "prod"}],
                "secrets": [
                    {"name": "MISSIONLINK_JWT_PRIVATE_KEY", "valueFrom": "arn:aws:secretsmanager:x"}
                ],
                "mountPoints": [],
                "volumesFrom": [],
                "systemControls": [],
            }
        ],
        **overrides,
    }
    return {"taskDefinition": task, "tags": []}


def test_renders_a_registerable_task_definition_without_empty_values() -> None:
    out = render_taskdef.render(described(), images={"api": IMAGE})
    assert out["containerDefinitions"][0]["image"] == IMAGE
    assert "tags" not in out and "placementConstraints" not in out
    assert "mountPoints" not in out["containerDefinitions"][0]
    assert out["volumes"] == [{"name": "tmp"}]
    for key in render_taskdef.READ_ONLY:
        assert key not in out
    assert render_taskdef.find_empty(out) == []


def test_keeps_real_tags() -> None:
    source = described()
    source["tags"] = [{"key": "environment", "value": "prod"}]
    assert render_taskdef.render(source, images={"api": IMAGE})["tags"] == source["tags"]


@pytest.mark.parametrize(
    "image",
    [
        "",
        "missionlink:latest",
        "333333333333.dkr.ecr.ap-northeast-2.amazonaws.com/missionlink",
        "333333333333.dkr.ecr.ap-northeast-2.amazonaws.com/missionlink:main",
        "333333333333.dkr.ecr.ap-northeast-2.amazonaws.com/missionlink:",
    ],
)
def test_p14_refuses_movable_image_references(image: str) -> None:
    with pytest.raises(render_taskdef.RenderError, match="P14"):
        render_taskdef.render(described(), images={"api": image})


def test_p14_also_checks_containers_it_does_not_replace() -> None:
    source = described()
    source["taskDefinition"]["containerDefinitions"].append(
        {"name": "collector", "image": "public.ecr.aws/otel/collector:latest"}
    )
    with pytest.raises(render_taskdef.RenderError, match="P14"):
        render_taskdef.render(source, images={"api": IMAGE})


def test_refuses_an_unknown_container() -> None:
    with pytest.raises(render_taskdef.RenderError, match="no container named"):
        render_taskdef.render(described(), images={"web": IMAGE})


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "described.json"
    source.write_text(json.dumps(described()))
    assert render_taskdef.main(["--container", "api", "--image", IMAGE, str(source)]) == 0
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["family"] == "missionlink-prod-api"
    assert render_taskdef.main(["--container", "api", "--image", "x:latest", str(source)]) == 1
    assert "P14" in capsys.readouterr().err


ses = load_module("ses_smtp_password", AWS_DIR / "release" / "ses_smtp_password.py")


def test_ses_smtp_password_is_a_versioned_sha256_signature() -> None:
    import base64

    password = ses.smtp_password("not-a-real-secret-access-key-for-tests", "ap-northeast-2")
    raw = base64.b64decode(password)
    assert raw[0] == 4 and len(raw) == 33
    assert password == ses.smtp_password("not-a-real-secret-access-key-for-tests", "ap-northeast-2")
    assert password != ses.smtp_password("not-a-real-secret-access-key-for-tests", "us-east-1")
