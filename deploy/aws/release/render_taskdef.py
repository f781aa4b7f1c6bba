#!/usr/bin/env python3
"""Render a registerable task definition from ``aws ecs describe-task-definition`` output.

release.yml takes the newest revision of a family (whose settings and secrets come from
the CDK app), swaps in the image being released, and registers the result:

    aws ecs describe-task-definition --task-definition missionlink-prod-api --include TAGS \\
      | python render_taskdef.py --container api --image 1234.dkr.ecr...@sha256:... \\
      > taskdef.json

It refuses movable image references (P14) and drops the read-only fields and the empty
values (``"tags": []`` and friends) that RegisterTaskDefinition and CodeDeploy reject (P13).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

READ_ONLY = {
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequested",
}
IMMUTABLE = re.compile(
    r"^[\w.-]+(?::\d+)?(?:/[\w.-]+)+"
    r"(?:@sha256:[0-9a-f]{64}|:(?:[0-9a-f]{40}|v?\d+\.\d+\.\d+(?:-rc\.\d+)?))$"
)
APPSPEC_IMAGE_PLACEHOLDER = "<IMAGE>"


class RenderError(ValueError):
    """The input cannot become a task definition that deploys."""


def check_image(image: str) -> str:
    """P14: only a digest, a git SHA or a semver tag may be deployed."""
    if image == APPSPEC_IMAGE_PLACEHOLDER or IMMUTABLE.match(image or ""):
        return image
    raise RenderError(
        f"P14: image reference {image!r} is empty, `latest` or not immutable; "
        "use repository@sha256:<digest> or an immutable tag"
    )


def prune(value: Any) -> Any:
    """Drop empty lists, maps, strings and nulls, recursively (P13)."""
    if isinstance(value, dict):
        out = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list):
        items = [prune(v) for v in value]
        return [v for v in items if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return (
        value is None
        or value == []
        or value == {}
        or (isinstance(value, str) and not value.strip())
    )


def render(described: dict[str, Any], *, images: dict[str, str]) -> dict[str, Any]:
    """Turn describe-task-definition output into RegisterTaskDefinition input."""
    task = dict(described.get("taskDefinition") or described)
    if "containerDefinitions" not in task:
        raise RenderError("input has no containerDefinitions")
    tags = described.get("tags")
    for key in READ_ONLY:
        task.pop(key, None)
    names = {c.get("name") for c in task["containerDefinitions"]}
    missing = set(images) - names
    if missing:
        raise RenderError(f"no container named {sorted(missing)} in {task.get('family')}")
    for container in task["containerDefinitions"]:
        if container.get("name") in images:
            container["image"] = check_image(images[container["name"]])
        else:
            check_image(container.get("image", ""))
    if tags:
        task["tags"] = tags
    rendered = prune(task)
    if empty := find_empty(rendered):
        raise RenderError(f"P13: empty values remain at {empty}")
    return rendered


def find_empty(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_empty(v, f"{path}/{k}")] or (
            [path or "/"] if not value else []
        )
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_empty(v, f"{path}/{i}")] or (
            [path or "/"] if not value else []
        )
    return [path] if _empty(value) else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--container",
        action="append",
        default=[],
        help="container whose image to replace (repeatable)",
    )
    parser.add_argument(
        "--image", action="append", default=[], help="image for the matching --container"
    )
    parser.add_argument("input", nargs="?", help="JSON file (default: standard input)")
    args = parser.parse_args(argv)
    if len(args.container) != len(args.image):
        parser.error("give one --image per --container")
    try:
        if args.input:
            with open(args.input, encoding="utf-8") as handle:
                described = json.load(handle)
        else:
            described = json.load(sys.stdin)
        rendered = render(described, images=dict(zip(args.container, args.image, strict=True)))
    except (RenderError, json.JSONDecodeError) as exc:
        print(f"render_taskdef: {exc}", file=sys.stderr)
        return 1
    json.dump(rendered, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
