"""Signing in to the dashboard with a token (kept in a cookie), and out."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from read_api.deps import models
from read_api.fastboard import COOKIE, digest_of
from read_api.templating import page

router = APIRouter()


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", None, next=next, error="")


@router.post("/login", include_in_schema=False)
async def login(request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = "/") -> Response:
    found = await asyncio.to_thread(models(request).user, digest_of(token.strip()))
    if found is None or found.revoked:
        return page(request, "login.html", None, status_code=401, next=next, error="That token is unknown or revoked.")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 86400)
    return response


@router.post("/logout", include_in_schema=False)
async def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
