"""The OpenAPI 3.1 description served at ``GET /v1/openapi.json``, checked against the served routes.

The error codes come from ``broker.errors`` (``problems.error_codes``), the
answers the guard may give on any route are added to every operation, and
``check_against(app, document)`` fails when a route is served but not
described or described but not served: ``create_app`` calls it once the
routes are mounted, so a drifted document stops the gateway (and every test
that builds one). Schemathesis fuzzes the live gateway against it in CI
(``tests/integration/test_schemathesis.py``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.audit.api import audit_openapi_paths
from broker.delivery.openapi import delivery_openapi_paths
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE
from broker.gateway.problems import error_codes

__all__ = ["check_against", "documented_operations", "openapi_document", "served_operations"]

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {
            "type": "string",
            "description": "stable machine-readable code",
            "enum": list(error_codes()),  # built from broker.errors: it cannot miss a code
        },
        "message": {"type": "string", "description": "what was wrong, for a person to act on"},
        "event_id": {"type": "string"},
    },
}
_POSITION = {
    "type": "object",
    "required": ["event_id", "topic", "partition", "offset"],
    "properties": {
        "event_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
    },
}
_BATCH_ITEM = {
    "type": "object",
    "description": "one envelope's result: where it is in the log, or why it was refused",
    "required": ["index", "status", "outcome"],
    "properties": {
        "index": {"type": "integer", "description": "its place in the batch, from 0"},
        "status": {"type": "integer", "description": "the HTTP status a single POST would get"},
        "outcome": {"type": "string", "enum": ["accepted", "duplicate", "refused"]},
        "event_id": {"type": "string"},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
        "error": {"$ref": "#/components/schemas/Error/properties/error"},
        "message": {"type": "string"},
    },
    "oneOf": [{"required": ["topic", "partition", "offset"]}, {"required": ["error", "message"]}],
}
_BATCH_RESULT = {
    "type": "object",
    "required": ["accepted", "duplicates", "refused", "results"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "refused": {"type": "integer"},
        "results": {
            "type": "array",
            "description": "one per envelope, in order",
            "items": {"$ref": "#/components/schemas/BatchItem"},
        },
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "refused (recorded in jigsaw.rejected)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


_RATE_LIMITED = {
    "429": {
        "description": "rate_limited: too many requests from this address or credential; wait Retry-After seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}


_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_NOT_API = ("/web", "/static", "/govuk")  # the pages for people (broker/web) are HTML, not part of this API


def _guarded(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation with the answers the guard (``guard.py``) may give on any route.

    429 everywhere; 408 (the body did not arrive in time) and 413 (larger than the gateway takes)
    wherever there is a body.
    """
    out: dict[str, Any] = {}
    for path, item in paths.items():
        out[path] = {}
        for method, operation in item.items():
            extra = {**_RATE_LIMITED, **(_errors(408, 413) if "requestBody" in operation else {})}
            out[path][method] = {**operation, "responses": {**extra, **operation["responses"]}}
    return out


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every operation in an OpenAPI document."""
    return {(m.upper(), path) for path, item in document["paths"].items() for m in item if m in _METHODS}


def served_operations(app: web.Application) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every API route ``app`` serves (HEAD, which aiohttp adds to GETs, aside)."""
    served = set()
    for resource in app.router.resources():
        path = resource.canonical
        if path == "/" or path.startswith(_NOT_API):  # "/" only redirects people to /web/
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
                served.add((route.method, path))
    return served


def check_against(app: web.Application, document: dict[str, Any]) -> None:
    """Raise unless the document describes exactly the routes ``app`` serves.

    Raises:
        RuntimeError: an operation is served but undocumented, or documented but not served.
    """
    served, documented = served_operations(app), documented_operations(document)
    if served != documented:
        raise RuntimeError(
            "the OpenAPI document has drifted from the routes: served but undocumented "
            f"{sorted(served - documented)}, documented but not served {sorted(documented - served)}"
        )


def openapi_document(max_body_bytes: int, max_batch: int) -> dict[str, Any]:
    """The API description, with this gateway's limits."""
    envelope_body = {
        "required": True,
        "content": {
            ENVELOPE_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "application/avro": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": f"one envelope, Avro binary (schemas/envelope.avsc); at most {max_body_bytes} bytes",
    }
    ok = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Position"}}}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Jigsaw gateway",
            "version": "1",
            "description": "Signed safeguarding events in; a 4xx with a stable code and a rejection record otherwise.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "Position": _POSITION, "BatchItem": _BATCH_ITEM, "BatchResult": _BATCH_RESULT},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Submit one signed envelope (its source must be the caller's organisation)",
                    "requestBody": envelope_body,
                    "responses": {
                        "202": {"description": "accepted and appended", **ok},
                        "200": {"description": "accepted earlier (same id, same bytes): its original position", **ok},
                        **_errors(400, 401, 403, 409, 422),
                        "503": {"description": "the log is unavailable; retry later"},
                    },
                }
            },
            "/v1/events:batch": {
                "post": {
                    "summary": "Submit many envelopes; each is judged on its own",
                    "requestBody": {
                        "required": True,
                        "content": {BATCH_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                        "description": (
                            'an Avro array of envelope byte strings ({"type": "array", "items": "bytes"}), '
                            f"at most {max_batch} items and {max_body_bytes} bytes"
                        ),
                    },
                    "responses": {
                        "207": {
                            "description": "per-envelope results",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResult"}}},
                        },
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "ok or unavailable; an admin or auditor credential also sees the log backend's status",
                    "security": [],
                    "responses": {"200": {"description": "ok"}, "503": {"description": "the log is down"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text metrics (admin or auditor only with JIGSAW_METRICS_REQUIRE_CREDENTIAL)",
                    "security": [],
                    "responses": {"200": {"description": "text/plain; version=0.0.4"}, **_errors(401, 403)},
                }
            },
            "/v1/openapi.json": {
                "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "ok"}}}
            },
            **delivery_openapi_paths(),
            **audit_openapi_paths(),
        },
    }
    document["paths"] = _guarded(document["paths"])
    return document
