"""Which methods each resource takes, for ``Allow`` on a 405 and the answer to ``OPTIONS``, and
which routes need the token, for the OpenAPI document.

Read from the routers themselves when the app is built (FastAPI's router keeps included routes in
a form that cannot be asked which methods a path takes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.routing import compile_path


@dataclass(frozen=True)
class RouteEntry:
    """One route: the pattern of its path, its path as the document writes it, its methods."""

    pattern: re.Pattern[str]
    path: str
    methods: frozenset[str]
    secured: bool


@dataclass(frozen=True)
class RouteTable:
    """The routes of an app, asked by path."""

    entries: tuple[RouteEntry, ...]

    @classmethod
    def of(
        cls, routers: Iterable[tuple[str, APIRouter]], is_secured: Callable[[APIRoute], bool]
    ) -> RouteTable:
        """The table of ``routers`` (each with the prefix it is included under)."""
        entries = []
        for prefix, router in routers:
            for route in router.routes:
                if isinstance(route, APIRoute):
                    pattern, path, _ = compile_path(prefix + route.path)
                    entries.append(RouteEntry(pattern, path, frozenset(route.methods), is_secured(route)))
        return cls(tuple(entries))

    def allowed(self, path: str) -> list[str]:
        """The methods the resource at ``path`` takes, OPTIONS among them (sorted)."""
        methods = {"OPTIONS"}
        for entry in self.entries:
            if entry.pattern.match(path):
                methods |= entry.methods
        return sorted(methods)

    def secured(self, method: str, path: str) -> bool:
        """Whether the operation (method, document path) needs the token."""
        return any(e.secured for e in self.entries if e.path == path and method.upper() in e.methods)
