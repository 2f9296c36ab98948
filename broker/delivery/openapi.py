"""The delivery routes' part of ``GET /v1/openapi.json``: the inbox and the webhook key."""

from __future__ import annotations

from typing import Any

__all__ = ["delivery_openapi_paths"]

_ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NOTIFICATION = {
    "type": "object",
    "description": (
        "a notification as the router wrote it (only what this recipient may see), with its acknowledgement; "
        "the same JSON is the body of a webhook"
    ),
    "required": ["notification_id", "kind", "event_id", "recipient", "at", "priority", "reason", "view"],
    "properties": {
        "notification_id": {"type": "string", "format": "uuid"},
        "kind": {"enum": ["alert", "catch_up", "history", "pre_birth_alert", "escalation", "retraction"]},
        "event_id": {"type": "string"},
        "event_type": {"type": "string"},
        "recipient": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "priority": {"enum": ["urgent", "routine"]},
        "flags": {"type": "array", "items": {"enum": ["restricted", "perpetrator_record"]}},
        "view": {"enum": ["full", "education"]},
        "reason": {"type": "string"},
        "also_notified": {"type": "array", "items": {"type": "string"}},
        "ack_by": {"type": ["string", "null"], "format": "date-time"},
        "content": {"type": "object"},
        "cause": {"type": ["string", "null"]},
        "safeguarding_lead": {"type": ["string", "null"]},
        "requires_ack": {"type": "boolean"},
        "acknowledged": {
            "type": ["object", "null"],
            "properties": {"by": {"type": "string"}, "at": {"type": "string", "format": "date-time"}},
        },
    },
}
# The person acknowledging: a name, not blank, at most 200 characters (inbox.py's _ack_body); Python's
# strip() also takes the information separators U+001C..U+001F, which JSON Schema's \s does not.
_BY = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "[^\\s\u001c-\u001f]"}
_ID = {"name": "notification_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "refused", **_ERROR_REF} for code in codes}


def delivery_openapi_paths() -> dict[str, Any]:
    """OpenAPI 3.1 path items for ``/v1/inbox...`` and ``/v1/webhook-key``."""
    one = {"content": {"application/json": {"schema": _NOTIFICATION}}}
    return {
        "/v1/inbox": {
            "get": {
                "summary": "The caller's organisation's notifications, oldest first, paged (each list is recorded)",
                "parameters": [
                    {"name": "unacknowledged", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "priority", "in": "query", "schema": {"enum": ["urgent", "routine"]}},
                    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {
                        "name": "after",
                        "in": "query",
                        "description": "the next of the previous page (with the same filters)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the notifications",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "organisation": {"type": "string"},
                                        "count": {"type": "integer"},
                                        "more": {"type": "boolean"},
                                        "next": {"type": ["string", "null"]},
                                        "notifications": {"type": "array", "items": _NOTIFICATION},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/inbox/{notification_id}": {
            "get": {
                "summary": "One of the caller's notifications; 404 for any other id (another organisation's too)",
                "parameters": [_ID],
                "responses": {"200": {"description": "the notification", **one}, **_errors(401, 403, 404)},
            }
        },
        "/v1/inbox/{notification_id}/ack": {
            "post": {
                "summary": "A named person acknowledges the notification; the first acknowledgement counts",
                "parameters": [_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["by"],
                                "properties": {"by": _BY},
                                "additionalProperties": False,
                            }
                        }
                    },
                },
                "responses": {
                    "201": {"description": "acknowledged now"},
                    "200": {"description": "acknowledged before (the first acknowledgement is returned)"},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/webhook-key": {
            "get": {
                "summary": "Jigsaw's Ed25519 public key (whpk_...) that verifies webhook signatures (scheme v1a)",
                "security": [],
                "responses": {"200": {"description": "the key and how signatures are made"}},
            }
        },
    }
