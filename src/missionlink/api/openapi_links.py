"""OpenAPI links: which response feeds which next request.

Clients (and the schema fuzzer's stateful phase) read them to chain calls the way the
product does: propose a mission, then pledge, bet, accept or settle it; write a post,
then comment on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API = "/api/v1"
MISSION = f"{API}/missions/{{mission_id}}"
POST = f"{API}/posts/{{post_id}}"


@dataclass(frozen=True)
class Link:
    source: tuple[str, str, str]  # method, path, status
    target: tuple[str, str]  # method, path
    parameters: dict[str, str] = field(default_factory=dict)
    request_body: dict[str, str] | None = None
    description: str = ""


def _links() -> list[Link]:
    new_mission = ("post", f"{API}/missions", "201")
    links = [
        Link(new_mission, (method, path), {"mission_id": "$response.body#/id"},
             description=f"{what} the mission just proposed")
        for method, path, what in (
            ("get", MISSION, "Show"),
            ("get", f"{MISSION}/pledges", "List the backers of"),
            ("post", f"{MISSION}/pledges", "Pledge to"),
            ("post", f"{MISSION}/bets", "Bet on"),
            ("get", f"{MISSION}/prediction", "Show the prediction pools of"),
            ("post", f"{MISSION}/accept", "Accept"),
            ("post", f"{MISSION}/reject", "Reject"),
            ("post", f"{MISSION}/cancel", "Cancel"),
            ("post", f"{MISSION}/result", "Declare the result of"),
        )
    ]
    for source in (("post", f"{MISSION}/pledges", "201"), ("post", f"{MISSION}/bets", "201"),
                   ("post", f"{MISSION}/accept", "200")):
        links.append(Link(source, ("get", MISSION), {"mission_id": "$request.path.mission_id"},
                          description="The mission after this change"))
        links.append(Link(source, ("get", f"{MISSION}/prediction"),
                          {"mission_id": "$request.path.mission_id"},
                          description="The prediction pools after this change"))
    links.append(Link(("get", MISSION, "200"), ("get", f"{API}/streamers/{{streamer_id}}"),
                      {"streamer_id": "$response.body#/streamer_id"},
                      description="The streamer the mission is for"))
    new_post = ("post", f"{API}/channels/{{streamer_id}}/posts", "201")
    links += [
        Link(new_post, (method, path), {"post_id": "$response.body#/id"},
             description=f"{what} the post just written")
        for method, path, what in (
            ("get", POST, "Show"),
            ("patch", POST, "Edit"),
            ("delete", POST, "Delete"),
            ("get", f"{POST}/comments", "List the comments on"),
            ("post", f"{POST}/comments", "Comment on"),
        )
    ]
    links.append(Link(("post", f"{POST}/comments", "201"),
                      ("delete", f"{API}/comments/{{comment_id}}"),
                      {"comment_id": "$response.body#/id"},
                      description="Delete the comment just written"))
    links.append(Link(("post", f"{POST}/comments", "201"),
                      ("patch", f"{API}/comments/{{comment_id}}"),
                      {"comment_id": "$response.body#/id"},
                      description="Edit the comment just written"))
    links.append(Link(("post", f"{API}/auth/signup", "201"),
                      ("get", f"{API}/streamers/{{streamer_id}}"),
                      {"streamer_id": "$response.body#/id"},
                      description="The channel of a streamer who just signed up"))
    for source in (("post", f"{API}/auth/login", "200"), ("post", f"{API}/auth/refresh", "200")):
        links.append(Link(source, ("post", f"{API}/auth/refresh"),
                          request_body={"refresh_token": "$response.body#/refresh_token"},
                          description="Spend the refresh token for a new pair"))
    return links


def add_links(spec: dict[str, Any]) -> None:
    """Declare the links on ``spec`` in place; a link whose ends are absent is left out."""
    paths: dict[str, dict[str, Any]] = spec.get("paths", {})
    for link in _links():
        method, path, status = link.source
        source = paths.get(path, {}).get(method)
        target = paths.get(link.target[1], {}).get(link.target[0])
        if source is None or target is None or "operationId" not in target:
            continue
        response = source.get("responses", {}).get(status)
        if response is None:
            continue
        declared: dict[str, Any] = {"operationId": target["operationId"],
                                    "description": link.description}
        if link.parameters:
            declared["parameters"] = dict(link.parameters)
        if link.request_body is not None:
            declared["requestBody"] = dict(link.request_body)
        name = target["operationId"]
        response.setdefault("links", {})[name] = declared
