"""A read-only view over one environment's synthesized CloudFormation templates.

Guards reason about resources across stacks, so ``Fn::ImportValue`` is followed to the
exporting stack's output, and ``Ref``/``Fn::GetAtt`` to the resource they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = Any


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    body: dict[str, Json]

    @property
    def type(self) -> str:
        return str(self.body.get("Type", ""))

    @property
    def props(self) -> dict[str, Json]:
        return self.body.get("Properties") or {}

    def __str__(self) -> str:
        return f"{self.stack}/{self.logical_id}"


class Assembly:
    """All templates of one environment (or a single test template)."""

    def __init__(self, templates: dict[str, dict[str, Json]], name: str = "") -> None:
        self.name = name
        self.templates = templates
        self._exports: dict[str, tuple[str, Json]] = {}
        for stack, template in templates.items():
            for output in (template.get("Outputs") or {}).values():
                export = (output.get("Export") or {}).get("Name")
                if isinstance(export, str):
                    self._exports[export] = (stack, output.get("Value"))

    @classmethod
    def from_directory(cls, directory: Path, name: str = "") -> Assembly:
        templates = {
            path.name.removesuffix(".template.json"): json.loads(path.read_text())
            for path in sorted(directory.glob("*.template.json"))
        }
        return cls(templates, name or directory.name)

    @classmethod
    def single(cls, template: dict[str, Json], name: str = "test") -> Assembly:
        return cls({name: template}, name)

    def resources(self, *types: str) -> Iterator[Resource]:
        for stack, template in self.templates.items():
            for logical_id, body in (template.get("Resources") or {}).items():
                if not types or body.get("Type") in types:
                    yield Resource(stack, logical_id, body)

    def get(self, stack: str, logical_id: str) -> Resource | None:
        body = (self.templates.get(stack, {}).get("Resources") or {}).get(logical_id)
        return Resource(stack, logical_id, body) if body is not None else None

    def target(self, stack: str, value: Json) -> Resource | None:
        """The resource a Ref / GetAtt / ImportValue points at, if any."""
        stack, value = self.follow(stack, value)
        if isinstance(value, dict):
            if "Ref" in value and isinstance(value["Ref"], str):
                return self.get(stack, value["Ref"])
            if "Fn::GetAtt" in value:
                att = value["Fn::GetAtt"]
                name = att[0] if isinstance(att, list) else str(att).split(".")[0]
                return self.get(stack, name)
        return None

    def references(self, stack: str, value: Json) -> list[Resource]:
        """Every resource a value refers to, looking inside joins."""
        stack, value = self.follow(stack, value)
        hit = self.target(stack, value)
        if hit is not None:
            return [hit]
        if isinstance(value, dict) and "Fn::Join" in value:
            return [r for item in value["Fn::Join"][1] for r in self.references(stack, item)]
        return []

    def follow(self, stack: str, value: Json) -> tuple[str, Json]:
        """Replace an ImportValue by the exporting output's value (repeatedly)."""
        seen = 0
        while isinstance(value, dict) and "Fn::ImportValue" in value and seen < 5:
            name = value["Fn::ImportValue"]
            if not isinstance(name, str) or name not in self._exports:
                break
            stack, value = self._exports[name]
            seen += 1
        return stack, value

    def flat(self, stack: str, value: Json) -> str:
        """A readable string for a value: literals as is, references as <Id>."""
        stack, value = self.follow(stack, value)
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, bool)):
            return str(value)
        if isinstance(value, dict):
            if "Fn::Join" in value:
                sep, items = value["Fn::Join"]
                return sep.join(self.flat(stack, item) for item in items)
            if "Ref" in value:
                return f"<{value['Ref']}>"
            if "Fn::GetAtt" in value:
                att = value["Fn::GetAtt"]
                return f"<{'.'.join(att) if isinstance(att, list) else att}>"
            if "Fn::Sub" in value:
                sub = value["Fn::Sub"]
                return sub if isinstance(sub, str) else str(sub[0])
            if "Fn::Select" in value:
                index, items = value["Fn::Select"]
                stack2, items = self.follow(stack, items)
                if isinstance(items, list) and isinstance(index, int) and index < len(items):
                    return self.flat(stack2, items[index])
        return json.dumps(value, sort_keys=True)

    def refers_to(self, stack: str, value: Json, resource: Resource) -> bool:
        hit = self.target(stack, value)
        return (
            hit is not None
            and hit.stack == resource.stack
            and (hit.logical_id == resource.logical_id)
        )

    def resolve_list(self, stack: str, value: Json) -> list[tuple[str, Json]]:
        """Each element paired with the stack it must be resolved in."""
        stack2, value = self.follow(stack, value)
        if isinstance(value, list):
            return [(stack2, item) for item in value]
        return [(stack2, value)] if value is not None else []


def as_list(value: Json) -> list[Json]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
