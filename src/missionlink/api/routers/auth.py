"""Identity endpoints: signup, login, refresh, logout and the caller's profile."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Cookie, Depends, Header, Query, Request, Response, status

from missionlink.api.deps import ClientAddress, CurrentUser, Deps
from missionlink.api.schemas.identity import LoginIn, RefreshIn, SignupIn, TokenPairOut, UserOut
from missionlink.domain.errors import Forbidden, InvalidInput
from missionlink.services import identity, sessions

router = APIRouter(tags=["auth"])

REFRESH_COOKIE = "ml_refresh"
COOKIE_PATH = "/api/v1/auth"


def cookie_mode(
    cookie: Annotated[bool, Query(description="also set the refresh token cookie")] = False,
    x_refresh_cookie: Annotated[str | None, Header()] = None,
) -> bool:
    """Browsers ask for the refresh token in an HttpOnly cookie (``?cookie=1``)."""
    return cookie or x_refresh_cookie == "1"


CookieMode = Annotated[bool, Depends(cookie_mode)]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: ``Sec-Fetch-Site`` values of requests a page of another site could not have made.
_OWN_FETCH_SITES = {"same-origin", "none"}


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` as browsers write it in ``Origin``, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


async def same_site_only(request: Request, container: Deps) -> None:
    """Refuse a browser request that another site's page made (the refresh cookie rides
    along with those); requests without browser provenance headers are API clients.

    Allowed origins: ``PUBLIC_URL``, ``CORS_ORIGINS`` and the origin the request was sent
    to (its own ``Host``), which only a page of this site can claim.
    """
    origin = request.headers.get("origin")
    if origin is not None:
        settings = container.settings
        allowed = {_origin(u) for u in (settings.public_url, *settings.cors_origins)}
        allowed.add(_origin(f"{request.url.scheme}://{request.headers.get('host', '')}"))
        allowed.discard(None)
        if _origin(origin) not in allowed:
            raise Forbidden(
                "cross-site request refused: Origin is not PUBLIC_URL or one of CORS_ORIGINS"
            )
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in _OWN_FETCH_SITES:
        raise Forbidden(f"cross-site request refused (Sec-Fetch-Site: {site[:20]})")


SameSiteOnly = Depends(same_site_only)
RefreshCookie = Annotated[str | None, Cookie(alias=REFRESH_COOKIE, include_in_schema=False)]
OptionalRefreshBody = Annotated[RefreshIn | None, Body()]


def _set_refresh_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _presented_token(body: RefreshIn | None, cookie: str | None) -> tuple[str, bool]:
    """The refresh token from the body, else from the cookie; True when it was the cookie."""
    if body is not None and body.refresh_token is not None:
        return body.refresh_token, False
    if cookie:
        return cookie, True
    raise InvalidInput.of("refresh_token", "required",
                          "required in the body or the ml_refresh cookie")


def _pair_out(pair: sessions.TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/api/v1/auth/signup", status_code=status.HTTP_201_CREATED)
async def signup(body: SignupIn, container: Deps, client: ClientAddress) -> UserOut:
    """Create a viewer or streamer account (admins come from ``missionlink admin create``)."""
    user = await identity.signup(
        container.accounts,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        role=body.role,
        language=body.language,
        client=client,
    )
    return UserOut.model_validate(user, from_attributes=True)


@router.post("/api/v1/auth/login")
async def login(
    body: LoginIn, container: Deps, client: ClientAddress, response: Response, cookie: CookieMode
) -> TokenPairOut:
    """Exchange email and password for an access token and a refresh token."""
    pair = await identity.login(container.accounts, email=body.email, password=body.password,
                                client=client)
    if cookie:
        _set_refresh_cookie(response, pair.refresh_token, container.settings.refresh_token_seconds)
    return _pair_out(pair)


@router.post("/api/v1/auth/refresh", dependencies=[SameSiteOnly])
async def refresh(
    container: Deps,
    response: Response,
    cookie: CookieMode,
    ml_refresh: RefreshCookie = None,
    body: OptionalRefreshBody = None,
) -> TokenPairOut:
    """Spend a refresh token for a new pair; reusing a spent one revokes its session."""
    token, from_cookie = _presented_token(body, ml_refresh)
    pair = await sessions.refresh(container.accounts, refresh_token=token)
    # A token that came from the cookie must be replaced there, or the next refresh would
    # present the spent one and revoke the session.
    if cookie or from_cookie:
        _set_refresh_cookie(response, pair.refresh_token, container.settings.refresh_token_seconds)
    return _pair_out(pair)


@router.post(
    "/api/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, dependencies=[SameSiteOnly]
)
async def logout(
    user: CurrentUser,
    container: Deps,
    ml_refresh: RefreshCookie = None,
    body: OptionalRefreshBody = None,
) -> Response:
    """Revoke the session of the refresh token and clear the cookie."""
    token, _ = _presented_token(body, ml_refresh)
    await sessions.logout(container.accounts, user_id=user.user_id, refresh_token=token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        REFRESH_COOKIE, path=COOKIE_PATH, secure=True, httponly=True, samesite="strict"
    )
    return response


@router.get("/api/v1/me")
async def me(user: CurrentUser, container: Deps) -> UserOut:
    """The caller's account."""
    view = await identity.profile(container.accounts, user_id=user.user_id)
    return UserOut.model_validate(view, from_attributes=True)
