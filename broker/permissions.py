"""Who may publish what, and which organisations an event may name (``scenarios.md``, ``events.md``).

Two rules of the submission check (``validation.verify``), in this order:

1. the publisher rule (``not_permitted``): an organisation's kind decides the
   event types it may publish; ``link.professional_assigned`` only by the
   assigned organisation itself or a children's social care org;
   ``record.retracted`` only by the original's publisher;
2. the directory rule (``unknown_organisation``): every OrgId in the data
   names an organisation already in the directory, of the kind its field (or,
   for an assignment, its role) implies.

Pure: the directory comes in as ``org_kind(org_id) -> kind or None``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from broker.errors import NotPermitted, UnknownOrganisation

__all__ = [
    "ANY_KIND_PREFIXES",
    "ORG_FIELD_KINDS",
    "PUBLISH_PERMISSIONS",
    "ROLE_KINDS",
    "OrgKindOf",
    "PublisherOf",
    "check_organisations",
    "check_publisher",
    "may_publish",
]

PublisherOf = Callable[[str], str | None]
OrgKindOf = Callable[[str], str | None]

ASSIGNMENT = "link.professional_assigned"

# Which organisation kinds may publish which event types (scenarios.md). An entry ending in
# "." is a prefix; record.retracted is open to every kind but checked against the original, and
# link.professional_assigned against the assigned organisation (check_publisher).
PUBLISH_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "police": ("police.",),
    "gp_practice": ("gp.", "identity.sensitive_record"),
    "midwifery": ("midwifery.",),
    "childrens_social_care": ("csc.", "identity.same_person"),
    "marac": ("marac.",),
    "partnership": ("directory.",),
}
ANY_KIND_PREFIXES = ("challenge.", "adult.concern_about_parent", "record.retracted", ASSIGNMENT)

# The kind of organisation each assignment role needs (events.md); None: any kind.
ROLE_KINDS: Mapping[str, str | None] = {
    "health_visitor": "health_visiting",
    "school": "school",
    "social_worker": "childrens_social_care",
    "midwife": "midwifery",
    "adult_mental_health": "adult_services",
    "other": None,
}

# The OrgId fields of the catalogue and the kind each implies; None: any kind. ``org`` takes its
# kind from the assignment's role.
ORG_FIELD_KINDS: Mapping[str, str | None] = {
    "practice": "gp_practice",
    "midwifery_service": "midwifery",
    "health_visiting": "health_visiting",
    "school": "school",
    "directed_to": None,
}

_KIND_WORDS = {
    "gp_practice": "a GP practice",
    "health_visiting": "a health visiting service",
    "school": "a school",
    "childrens_social_care": "a children's social care organisation",
    "midwifery": "a midwifery service",
    "adult_services": "an adult services organisation",
}


@functools.lru_cache(maxsize=1024)  # kinds x event types: a few hundred pairs, asked for every submission
def may_publish(kind: str, event_type: str) -> bool:
    """True when an organisation of ``kind`` may publish ``event_type`` at all.

    ``record.retracted`` and ``link.professional_assigned`` pass here and are narrowed by
    ``check_publisher`` (the original's publisher; the assigned organisation or a CSC).
    """
    allowed = (*PUBLISH_PERMISSIONS.get(kind, ()), *ANY_KIND_PREFIXES)
    return any(event_type.startswith(p) if p.endswith(".") else event_type == p for p in allowed)


def check_publisher(
    event_type: str, source: str, kind: str, data: Mapping[str, Any], publisher_of: PublisherOf
) -> None:
    """The publisher rule.

    Raises:
        NotPermitted: the source's kind may not publish the type, assigns another organisation
            without being children's social care, or retracts what it did not publish.
    """
    if not may_publish(kind, event_type):
        raise NotPermitted(f"{source} is a {kind} organisation and may not publish {event_type}")
    if event_type == ASSIGNMENT:
        org = str(data.get("org"))
        if org != source and kind != "childrens_social_care":
            raise NotPermitted(
                f"{source} may not assign {org} to a person: only the assigned organisation itself "
                "or a children's social care organisation may publish link.professional_assigned"
            )
    elif event_type == "record.retracted":
        original = str(data["original_event_id"])
        publisher = publisher_of(original)
        if publisher is None:
            raise NotPermitted(f"there is no accepted event {original} to retract")
        if publisher != source:
            raise NotPermitted(f"event {original} was published by another organisation; only it may retract it")


def _field_kind(event_type: str, field: str, data: Mapping[str, Any]) -> tuple[bool, str | None, str]:
    """(is an OrgId field, the kind it needs or None for any, how to say why)."""
    if field == "org" and event_type == ASSIGNMENT:
        role = str(data.get("role"))
        return True, ROLE_KINDS.get(role), f"the role {role}"
    if field in ORG_FIELD_KINDS and event_type != "directory.organisation":
        return True, ORG_FIELD_KINDS[field], f"the field {field}"
    return False, None, ""


def check_organisations(event_type: str, data: Mapping[str, Any], org_kind: OrgKindOf) -> None:
    """The directory rule: every OrgId in ``data`` names a directory organisation of the right kind.

    Raises:
        UnknownOrganisation: naming the field, the organisation and what is wrong with it.
    """
    for field in sorted(data):
        if field != "org" and field not in ORG_FIELD_KINDS:
            continue  # most fields: not an OrgId (what _field_kind says, without building its words)
        value = data[field]
        is_org, needed, why = _field_kind(event_type, field, data)
        if not is_org or value is None:
            continue
        org = str(value)
        kind = org_kind(org)
        if kind is None:
            raise UnknownOrganisation(
                f"field '{field}' names {org[:100]!r}, which is not in the directory: check the "
                "organisation's id, or ask the partnership to add it before naming it",
                field=field,
            )
        if needed is not None and kind != needed:
            raise UnknownOrganisation(
                f"field '{field}' names {org}, a {kind} organisation; {why} needs {_KIND_WORDS.get(needed, needed)}",
                field=field,
            )
