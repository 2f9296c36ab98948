"""The OpenAPI 3.1 description served at ``GET /v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from broker.audit.api import audit_openapi_paths
from broker.delivery.openapi import delivery_openapi_paths
from broker.envelope.batch import BATCH_CONTENT_TYPE, ENVELOPE_CONTENT_TYPE

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {
            "type": "string",
            "description": "stable machine-readable code",
            "enum": [
                "schema_invalid",
                "signature_invalid",
                "unknown_key",
                "key_revoked",
                "not_permitted",
                "invalid_nhs_number",
                "invalid_request",
                "payload_too_large",
                "duplicate_event",
                "unauthenticated",
                "forbidden",
                "log_unavailable",
                "internal_error",
            ],
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
_BATCH_RESULT = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "accepted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "refused": {"type": "integer"},
        "results": {
            "type": "array",
            "description": "one per envelope, in order; each has the HTTP status a single POST would get",
            "items": {
                "allOf": [
                    {"type": "object", "required": ["index", "status"]},
                    {"oneOf": [{"$ref": "#/components/schemas/Position"}, {"$ref": "#/components/schemas/Error"}]},
                ],
                "properties": {
                    "index": {"type": "integer"},
                    "status": {"type": "integer", "description": "the HTTP status a single POST would get"},
                    "outcome": {"type": "string", "enum": ["accepted", "duplicate", "refused"]},
                },
            },
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Jigsaw gateway",
            "version": "1",
            "description": "Signed safeguarding events in; a 4xx with a stable code and a rejection record otherwise.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "Position": _POSITION, "BatchResult": _BATCH_RESULT},
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
                        **_errors(400, 401, 403, 408, 409, 413, 422),
                        **_RATE_LIMITED,
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
                        **_errors(400, 401, 403, 408, 413),
                        **_RATE_LIMITED,
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
