"""What the routes share: :class:`ApiState`, read through a dependency, and the token check.

A route asks for the state with a ``State`` parameter instead of closing over it, so each route
module stands alone (see docs/architecture.md, "HTTP").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from manager.http import auth
from manager.http.errors import ApiError
from manager.loop.experiments import ExperimentManager
from manager.store import Store
from manager.views import archstats


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("nasctl")
    except Exception:
        return "0.1.0"


VERSION = _version()


@dataclass(frozen=True)
class ApiState:
    """What the routes need: the store (reads), the experiment manager (changes), the token, and
    the dashboard views' cache (one per app)."""

    store: Store
    experiments: ExperimentManager
    token: str
    version: str = VERSION
    views: archstats.TrialCache = field(default_factory=archstats.TrialCache, compare=False)


async def current_state(request: Request) -> ApiState:
    """The app's :class:`ApiState` (``app.state.api``, set by ``create_app``)."""
    return request.app.state.api  # type: ignore[no-any-return]


State = Annotated[ApiState, Depends(current_state)]


async def authorize(request: Request, state: State) -> None:
    """The Bearer header, or the dashboard's HTTP-only cookie (:mod:`manager.http.auth`); constant time."""
    failure = auth.check(request, state.token, request.method)
    if failure is not None:
        raise ApiError(failure.status, failure.detail)


#: The dependencies of every route but health.
SECURED = [Depends(authorize)]
