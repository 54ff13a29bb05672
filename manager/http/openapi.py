"""The OpenAPI document's entries FastAPI cannot see: inputs the routes parse by hand (for
errors that name the field), and the error answers of every operation.

The routes read their query parameters and bodies themselves (:mod:`manager.http.queries`,
:mod:`manager.http.bodies`), so FastAPI cannot see them; each route passes
``openapi_extra=documented(...)`` built from the same objects it parses with, so the document
(which tests/reliability fuzzes) cannot drift from the parsing. Error answers are derived from
what each route is (:func:`document_errors`): no route lists its 401 or 404 by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from fastapi import FastAPI

from manager.http.errors import PROBLEM_MEDIA_TYPE, STATUSES
from manager.http.methods import RouteTable


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
            # an empty value (``?status=``) means "not given" (manager.http.queries)
            {
                "name": query.name,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "schema": query.schema(),
            }
            for query in queries
        ]
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return extra


def conflict(when: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that answers 409 ``when`` (the other errors are derived)."""
    return {409: {"description": f"not allowed in the current state: {when}"}}


#: The JSON schema of every error answer (RFC 9457 problem details, :func:`manager.http.errors.problem`).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "about:blank: the status says what kind of mistake"},
        "title": {"type": "string", "description": "the status's phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "one line: what was wrong and what is allowed"},
        "field": {"type": "string", "description": "the query parameter or body field that was wrong"},
    },
}


def error_statuses(method: str, path: str, operation: dict[str, Any], secured: bool) -> list[int]:
    """The error statuses an operation can answer with, from what it is (see errors.STATUSES)."""
    statuses = {421}  # the loopback guard sees every request first
    if secured:
        statuses.add(401)
        if method != "get":
            statuses.add(403)  # the dashboard cookie without its header
    if "{" in path:
        statuses.add(404)
    if "requestBody" in operation or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        statuses.add(400)
    if "requestBody" in operation:
        statuses.add(413)
    if method != "get":
        statuses.add(507)  # a change written to a full disk
    statuses.update(int(code) for code in operation.get("responses", {}) if str(code).isdigit())
    return sorted(s for s in statuses if s >= 400)


def document_errors(app: FastAPI, routes: RouteTable) -> None:
    """Make ``app.openapi()`` list, for every operation, each error it can answer with as problem
    details (FastAPI's own 422, which this API never answers, is dropped)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status in error_statuses(method, path, operation, routes.secured(method, path)):
                    declared = responses.get(str(status), {})
                    responses[str(status)] = {
                        "description": declared.get("description") or STATUSES[status],
                        "content": content,
                    }
        link_new_experiments(document)
        if not schemas:
            document["components"].pop("schemas")
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


#: The operation that creates experiments, and the path parameter its answer's ``id`` fills.
CREATE_EXPERIMENT = ("/api/v1/experiments", "post", "201")
EXPERIMENT_PARAMETER = "experiment_id"


def link_new_experiments(document: dict[str, Any]) -> None:
    """OpenAPI links from a created experiment to every operation on it (its ``id`` is their
    ``experiment_id``), so clients and the fuzzer's stateful phase can follow one to the next."""
    path, method, status = CREATE_EXPERIMENT
    links: dict[str, Any] = {}
    for other, operations in document.get("paths", {}).items():
        if not other.startswith(f"{path}/{{{EXPERIMENT_PARAMETER}}}") or other.count("{") != 1:
            continue
        for operation in operations.values():
            links[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {EXPERIMENT_PARAMETER: "$response.body#/id"},
            }
    document["paths"][path][method]["responses"][status]["links"] = links
