"""The OpenAPI entries of inputs the routes parse by hand (for errors that name the field).

The routes read their query parameters and bodies themselves (:mod:`manager.http.queries`,
:mod:`manager.http.bodies`), so FastAPI cannot see them; each route passes
``openapi_extra=documented(...)`` built from the same objects it parses with, so the document
(which tests/reliability fuzzes) cannot drift from the parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class DocumentedQuery(Protocol):
    """A query parameter that can describe itself."""

    @property
    def name(self) -> str: ...

    def schema(self) -> dict[str, Any]: ...


def integer(low: int, high: int | None = None) -> dict[str, Any]:
    """The JSON schema of a whole number in [low, high]."""
    schema: dict[str, Any] = {"type": "integer", "minimum": low}
    if high is not None:
        schema["maximum"] = high
    return schema


def enum(values: Iterable[Any]) -> dict[str, Any]:
    """The JSON schema of one of ``values`` (strings, or enum members by their value)."""
    return {"type": "string", "enum": [v.value if hasattr(v, "value") else v for v in values]}


def documented(*queries: DocumentedQuery, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``openapi_extra`` of a route: its optional query parameters and its required JSON body."""
    extra: dict[str, Any] = {}
    if queries:
        extra["parameters"] = [
            {"name": query.name, "in": "query", "required": False, "schema": query.schema()}
            for query in queries
        ]
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return extra
