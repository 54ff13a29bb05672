"""``GET /health``: the one route without the token (the CLI's "is a daemon there?")."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from manager.http.state import State

router = APIRouter()


@router.get("/health", response_model=None)
def health(state: State) -> dict[str, Any]:
    return {"status": "ok", "version": state.version, "pid": os.getpid()}
