"""HTTP routes for /auth: thin, they validate, call the use-case and render."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.http import JSONResponse, identity, read_body, services
from booking.schemas import LoginBody, RefreshBody, RegisterBody


async def register(request: Request) -> JSONResponse:
    body = await read_body(request, RegisterBody)
    user = await services(request).auth.register(
        email=body.email, password=body.password, name=body.name
    )
    return JSONResponse(user.public(), status_code=201)


async def login(request: Request) -> JSONResponse:
    body = await read_body(request, LoginBody)
    pair = await services(request).auth.login(
        email=body.email, password=body.password, now=datetime.now(UTC)
    )
    return JSONResponse(pair.body())


async def refresh(request: Request) -> JSONResponse:
    body = await read_body(request, RefreshBody)
    pair = await services(request).auth.refresh(
        refresh_token=body.refresh_token, now=datetime.now(UTC)
    )
    return JSONResponse(pair.body())


async def logout(request: Request) -> Response:
    body = await read_body(request, RefreshBody)
    await services(request).auth.logout(refresh_token=body.refresh_token, now=datetime.now(UTC))
    return Response(status_code=204)


async def me(request: Request) -> JSONResponse:
    user = await services(request).auth.me(identity(request))
    return JSONResponse(user.public())


routes = [
    Route("/auth/register", register, methods=["POST"]),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/refresh", refresh, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/me", me, methods=["GET"]),
]
