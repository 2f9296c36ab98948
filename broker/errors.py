"""One exception tree for Jigsaw.

Every error that can reach a client carries a stable machine-readable ``code``
and a message a person can act on. ``retriable`` says whether trying the same
thing again later may succeed. Causes are chained with ``raise ... from``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "DuplicateEvent",
    "EventPending",
    "Forbidden",
    "InvalidNhsNumber",
    "InvalidRequest",
    "JigsawError",
    "KeyRevoked",
    "LogUnavailable",
    "NotFound",
    "NotPermitted",
    "PayloadTooLarge",
    "ScenarioError",
    "SchemaInvalid",
    "SignatureInvalid",
    "Unauthenticated",
    "UnknownKey",
    "UnknownOrganisation",
]


class JigsawError(Exception):
    """Root of every error Jigsaw raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    retriable: ClassVar[bool] = False

    def __init__(self, message: str, **evidence: Any) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence

    def to_dict(self) -> dict[str, str]:
        """The JSON body a client receives: ``{"error": code, "message": ...}``."""
        return {"error": self.code, "message": self.message}


class ConfigError(JigsawError, ValueError):
    """The settings or files Jigsaw was started with are wrong."""

    code = "config_invalid"


class ScenarioError(JigsawError, ValueError):
    """A scenario file is itself wrong (not an event in it being refused)."""

    code = "scenario_invalid"


class LogUnavailable(JigsawError):
    """The log backend cannot be reached right now."""

    code = "log_unavailable"
    http_status = 503
    retriable = True


class StoreUnavailable(JigsawError):
    """The serving views' database (SQLite or PostgreSQL) cannot be reached or failed; try again."""

    code = "store_unavailable"
    http_status = 503
    retriable = True


# --- refusals of agency input: each is recorded in the rejection topic -------


class Refusal(JigsawError):
    """An agency submission that is refused; always recorded."""

    http_status = 400


class SchemaInvalid(Refusal):
    code = "schema_invalid"


class SignatureInvalid(Refusal):
    code = "signature_invalid"
    http_status = 403


class UnknownKey(Refusal):
    code = "unknown_key"
    http_status = 403


class KeyRevoked(Refusal):
    code = "key_revoked"
    http_status = 403


class NotPermitted(Refusal):
    code = "not_permitted"
    http_status = 403


class InvalidNhsNumber(Refusal):
    code = "invalid_nhs_number"
    http_status = 422


class UnknownOrganisation(Refusal):
    """An OrgId in the data names no directory organisation, or one of the wrong kind for its field."""

    code = "unknown_organisation"
    http_status = 422


class InvalidRequest(Refusal):
    code = "invalid_request"


class PayloadTooLarge(Refusal):
    code = "payload_too_large"
    http_status = 413


class DuplicateEvent(Refusal):
    """An event id already accepted, re-sent with different content."""

    code = "duplicate_event"
    http_status = 409


class EventPending(Refusal):
    """Another gateway is accepting this event id right now and has not said where it landed."""

    code = "event_pending"
    http_status = 503
    retriable = True


class Unauthenticated(Refusal):
    code = "unauthenticated"
    http_status = 401


class Forbidden(Refusal):
    """An authenticated caller acting outside its organisation or role."""

    code = "forbidden"
    http_status = 403


class NotFound(JigsawError):
    code = "not_found"
    http_status = 404


class SignInFailed(JigsawError):
    """A person's sign-in through the identity provider failed a check (state, nonce, signature, mapping)."""

    code = "sign_in_failed"
    http_status = 401


# --- refusals of requests at the HTTP edge (broker/gateway/guard.py) ---------


class RateLimited(Refusal):
    """Too many requests from one client address or credential; the answer says when to try again."""

    code = "rate_limited"
    http_status = 429
    retriable = True


class RequestTimeout(Refusal):
    """The client did not send the whole request in time (a stalled or trickled body)."""

    code = "request_timeout"
    http_status = 408
    retriable = True


class IncompleteRequest(Refusal):
    """The client went away before sending the whole request."""

    code = "incomplete_request"
    retriable = True


__all__ += ["IncompleteRequest", "RateLimited", "Refusal", "RequestTimeout", "SignInFailed", "StoreUnavailable"]
