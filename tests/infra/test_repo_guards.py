"""Repository-wide guards: no stored AWS keys and OIDC-only workflows (P7); actions pinned
by commit SHA and no movable image references (P14)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("yaml")

from missionlink_infra.guards import repo

from tests.infra.conftest import ROOT


def test_this_repository_passes() -> None:
    assert repo.check_no_stored_keys(ROOT) == []
    assert repo.check_pinned_references(ROOT) == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    shutil.copytree(ROOT / "deploy" / "docker", tmp_path / "deploy" / "docker")
    return tmp_path


def test_p7_stored_access_key_in_a_workflow(copy: Path) -> None:
    release = copy / ".github" / "workflows" / "release.yml"
    text = release.read_text().replace(
        "role-to-assume: arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/"
        "missionlink-${{ needs.plan.outputs.environment }}-github-infra",
        "aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n"
        "          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}",
    )
    release.write_text(text)
    problems = repo.check_no_stored_keys(copy)
    assert any("P7" in p and "aws-access-key-id" in p for p in problems), problems
    assert any("P7" in p and "without a role" in p for p in problems), problems


def test_p7_missing_id_token_permission(copy: Path) -> None:
    release = copy / ".github" / "workflows" / "release.yml"
    release.write_text(release.read_text().replace("id-token: write", "id-token: none"))
    assert any("id-token: write" in p for p in repo.check_no_stored_keys(copy))


def test_p7_access_key_committed_anywhere(copy: Path) -> None:
    key_id = "AKIA" + "Q" * 16
    (copy / "settings.env").write_text(f"AWS_KEY={key_id}\n")
    assert any("settings.env" in p for p in repo.check_no_stored_keys(copy))


def test_p14_action_by_tag_and_latest_image(copy: Path) -> None:
    ci = copy / ".github" / "workflows" / "ci.yml"
    text = (
        ci.read_text()
        .replace(
            "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "actions/checkout@v7", 1
        )
        .replace("postgres:17.6", "postgres:latest")
    )
    ci.write_text(text)
    problems = repo.check_pinned_references(copy)
    assert any("actions/checkout@v7" in p for p in problems), problems
    assert any("latest" in p for p in problems), problems


def test_p14_untagged_base_image(copy: Path) -> None:
    dockerfile = copy / "deploy" / "docker" / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("${BASE_IMAGE} AS runtime", "python AS runtime")
    )
    assert any("FROM python without a tag" in p for p in repo.check_pinned_references(copy))
