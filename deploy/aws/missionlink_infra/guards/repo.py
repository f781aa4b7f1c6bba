"""Repository pitfalls: CI credentials (P7) and image references in deploy config (P14)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
SECRET_KEY_ASSIGNMENT = re.compile(
    r"aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}", re.IGNORECASE
)
KEY_INPUTS = (
    "aws-access-key-id",
    "aws-secret-access-key",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
SKIP_DIRS = {".git", ".cache", ".venv", "node_modules", "cdk.out", "__pycache__", "var"}


def repo_files(root: Path) -> list[Path]:
    """Tracked and untracked-but-not-ignored files (falls back to a walk outside git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [root / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [
            p
            for p in root.rglob("*")
            if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts)
        ]


def workflows(root: Path) -> dict[Path, dict[str, Any]]:
    folder = root / ".github" / "workflows"
    return {
        path: yaml.safe_load(path.read_text()) or {}
        for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    }


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for name, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            out.append((name, job, step))
    return out


def check_no_stored_keys(root: Path) -> list[str]:
    """P7: no access keys in the repository; AWS access in workflows is OIDC only."""
    problems = []
    for path in repo_files(root):
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(errors="ignore")
        except OSError:
            continue
        rel = path.relative_to(root)
        if ACCESS_KEY_ID.search(text) or SECRET_KEY_ASSIGNMENT.search(text):
            problems.append(f"P7: {rel} contains what looks like an AWS access key")
    for path, workflow in workflows(root).items():
        rel = path.relative_to(root)
        text = path.read_text()
        for word in KEY_INPUTS:
            if word in text:
                problems.append(f"P7: {rel} mentions {word}; use role-to-assume (OIDC)")
        top = workflow.get("permissions") or {}
        for job_name, job, step in _steps(workflow):
            if "configure-aws-credentials" not in str(step.get("uses", "")):
                continue
            inputs = step.get("with") or {}
            if "role-to-assume" not in inputs:
                problems.append(f"P7: {rel} job {job_name} configures AWS without a role")
            perms = job.get("permissions", top) or {}
            if not isinstance(perms, dict) or perms.get("id-token") != "write":
                problems.append(f"P7: {rel} job {job_name} lacks `id-token: write` for OIDC")
    return problems


def check_pinned_references(root: Path) -> list[str]:
    """P14: actions by commit SHA, images by digest or immutable tag, never `latest`."""
    problems = []
    for path, workflow in workflows(root).items():
        rel = path.relative_to(root)
        for job_name, _job, step in _steps(workflow):
            uses = str(step.get("uses", ""))
            if uses and not uses.startswith("./") and not PINNED_ACTION.match(uses):
                problems.append(f"P14: {rel} job {job_name} uses {uses!r}: pin a commit SHA")
        if re.search(r":latest\b", path.read_text()):
            problems.append(f"P14: {rel} refers to a `latest` image")
    for dockerfile in (root / "deploy").rglob("Dockerfile*"):
        for line in dockerfile.read_text().splitlines():
            match = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.IGNORECASE)
            if not match:
                continue
            image = match.group(1)
            if "$" in image or image.lower() in _stage_names(dockerfile):
                continue
            if ":" not in image.split("/")[-1] and "@sha256:" not in image:
                problems.append(
                    f"P14: {dockerfile.relative_to(root)} builds FROM {image} without a tag"
                )
            elif image.endswith(":latest"):
                problems.append(f"P14: {dockerfile.relative_to(root)} builds FROM {image}")
    return problems


def _stage_names(dockerfile: Path) -> set[str]:
    return {
        m.group(1).lower()
        for m in re.finditer(r"\bAS\s+(\S+)", dockerfile.read_text(), re.IGNORECASE)
    }
