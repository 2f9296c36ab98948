"""Children's social care: plans, strategy meetings, pre-birth assessments and households.

Four record types (``record_type``), as a case management system's reports
give them (columns in ``adapters/README.md``):

- ``plan``: a child in need (``plan_type`` ``CIN``) or child protection
  (``CP``) plan's status change: ``plan_ref``, the child (``child_*``),
  ``status`` (started, reviewed, ended), ``status_date``, ``category`` (CP
  only: the census categories), ``summary``, ``next_review``. Each status
  change on its date is one event.
- ``strategy_meeting``: ``meeting_ref``, ``held_on``, ``decision``,
  ``summary`` and the children discussed (``children_<n>_*``).
- ``pre_birth_assessment``: ``assessment_ref``, the mother, the expected
  father (``father_*``), ``status`` (requested, started, completed),
  ``status_date``, ``outcome``. One event per status and date.
- ``household``: who lives with a child as recorded on ``recorded_on``: the
  child, the members (``members_<n>_*`` with ``relationship`` and
  ``lives_with_child``), the ``school`` (OrgId, or the school's URN) and the
  ``health_visiting`` team (OrgId). Each recording is one event.
"""

from __future__ import annotations

from typing import Any

from adapters.base import Adapter, Mapped, MissingField, RecordKey, Row, normalise_word
from adapters.fields import date_value, flag, iso, moment, org_ref, person, required_person

__all__ = [
    "ADAPTER",
    "CP_CATEGORIES",
    "DECISIONS",
    "PLAN_STATUSES",
    "RELATIONSHIPS",
    "map_household",
    "map_plan",
    "map_pre_birth_assessment",
    "map_strategy_meeting",
]

PLAN_TYPES = {
    "cin": "cin",
    "child in need": "cin",
    "cin plan": "cin",
    "child in need plan": "cin",
    "cp": "cp",
    "cpp": "cp",
    "child protection": "cp",
    "cp plan": "cp",
    "child protection plan": "cp",
}
PLAN_STATUSES = {
    "started": "started",
    "start": "started",
    "open": "started",
    "opened": "started",
    "reviewed": "reviewed",
    "review": "reviewed",
    "ended": "ended",
    "end": "ended",
    "closed": "ended",
    "ceased": "ended",
}
CP_CATEGORIES = {
    "neglect": "neglect",
    "n": "neglect",
    "physical abuse": "physical_abuse",
    "pa": "physical_abuse",
    "emotional abuse": "emotional_abuse",
    "ea": "emotional_abuse",
    "sexual abuse": "sexual_abuse",
    "sa": "sexual_abuse",
    "multiple": "multiple",
    "mul": "multiple",
}
DECISIONS = {
    "no further action": "no_further_action",
    "nfa": "no_further_action",
    "section 47": "section_47",
    "s47": "section_47",
    "child in need": "child_in_need",
    "cin": "child_in_need",
    "initial child protection conference": "initial_child_protection_conference",
    "icpc": "initial_child_protection_conference",
    "public law outline": "public_law_outline",
    "plo": "public_law_outline",
}
ASSESSMENT_STATUSES = {
    "requested": "requested",
    "referred": "requested",
    "started": "started",
    "in progress": "started",
    "completed": "completed",
    "complete": "completed",
}
RELATIONSHIPS = {
    "mother": "mother",
    "birth mother": "mother",
    "father": "father",
    "birth father": "father",
    "step parent": "step_parent",
    "stepfather": "step_parent",
    "stepmother": "step_parent",
    "partner of parent": "partner_of_parent",
    "mother's partner": "partner_of_parent",
    "mothers partner": "partner_of_parent",
    "father's partner": "partner_of_parent",
    "fathers partner": "partner_of_parent",
    "sibling": "sibling",
    "half sibling": "sibling",
    "brother": "sibling",
    "sister": "sibling",
    "grandparent": "grandparent",
    "grandmother": "grandparent",
    "grandfather": "grandparent",
    "other adult": "other_adult",
    "lodger": "other_adult",
    "other child": "other_child",
}


def _person_key(ref: dict[str, Any]) -> str:
    return str(ref["nhs_number"] or ref["local_id"]).replace(" ", "")


def map_plan(row: Row, org_id: str) -> list[Mapped]:
    """A ``csc.child_in_need_plan`` or ``csc.child_protection_plan`` status change."""
    if row.get("plan_type") is None and row.get("record_type") is not None:
        # record_type may say which plan it is (cp_plan, child_in_need_plan)
        plan_type = {normalise_word(k): v for k, v in PLAN_TYPES.items()}.get(normalise_word(row.text("record_type")))
        if plan_type is None:
            raise MissingField("plan_type is missing (CIN or CP)", field="plan_type")
    else:
        plan_type = row.choice("plan_type", PLAN_TYPES, "plan type")
    ref = row.text("plan_ref")
    status = row.choice("status", PLAN_STATUSES, "plan status")
    when = moment(row, "status_date")
    data: dict[str, Any] = {
        "plan_ref": ref,
        "child": required_person(row, "child", org_id),
        "status": status,
        "summary": row.text("summary"),
        "next_review": iso(date_value(row, "next_review", required=False)),
    }
    if plan_type == "cp":
        data["category"] = row.choice("category", CP_CATEGORIES, "child protection category")
    event_type = "csc.child_protection_plan" if plan_type == "cp" else "csc.child_in_need_plan"
    key = RecordKey(f"{plan_type}_plan", ref, f"{status}:{when.date().isoformat()}")
    return [Mapped(event_type, data, when, key)]


def map_strategy_meeting(row: Row, org_id: str) -> list[Mapped]:
    """A ``csc.strategy_meeting``."""
    ref = row.text("meeting_ref")
    children = [required_person(child, "", org_id) for child in row.group("children")]
    if not children:
        raise MissingField(
            "children: a strategy meeting names at least one child (children_1_nhs_number ...)",
            field="children_1_nhs_number",
        )
    held_on = date_value(row, "held_on")
    assert held_on is not None
    data = {
        "meeting_ref": ref,
        "children": children,
        "held_on": held_on.isoformat(),
        "decision": row.choice("decision", DECISIONS, "strategy meeting decision"),
        "summary": row.text("summary"),
    }
    return [Mapped("csc.strategy_meeting", data, moment(row, "held_on"), RecordKey("strategy_meeting", ref))]


def map_pre_birth_assessment(row: Row, org_id: str) -> list[Mapped]:
    """A ``csc.pre_birth_assessment`` status change."""
    ref = row.text("assessment_ref")
    status = row.choice("status", ASSESSMENT_STATUSES, "assessment status")
    data = {
        "assessment_ref": ref,
        "mother": required_person(row, "mother", org_id),
        "expected_father": person(row, "father", org_id),
        "status": status,
        "outcome": row.get("outcome"),
    }
    when = moment(row, "status_date")
    key = RecordKey("pre_birth_assessment", ref, f"{status}:{when.date().isoformat()}")
    return [Mapped("csc.pre_birth_assessment", data, when, key)]


def map_household(row: Row, org_id: str) -> list[Mapped]:
    """A ``csc.household_composition``."""
    child = required_person(row, "child", org_id)
    members = []
    for member in row.group("members"):
        members.append(
            {
                "person": required_person(member, "", org_id),
                "relationship": member.choice("relationship", RELATIONSHIPS, "relationship"),
                "lives_with_child": flag(member, "lives_with_child", True),
            }
        )
    if not members:
        raise MissingField(
            "members: a household names at least one member (members_1_nhs_number ...)", field="members_1_nhs_number"
        )
    when = moment(row, "recorded_on")
    data = {
        "child": child,
        "members": members,
        "school": org_ref(row, "school", digits_prefix="SCHOOL-"),
        "health_visiting": org_ref(row, "health_visiting"),
    }
    ident = row.get("household_ref") or _person_key(child)
    return [
        Mapped(
            "csc.household_composition",
            data,
            when,
            RecordKey("household", ident, when.isoformat().replace("+00:00", "Z")),
        )
    ]


ADAPTER = Adapter(
    name="csc",
    org_kind="childrens_social_care",
    mappers={
        "plan": map_plan,
        "strategy_meeting": map_strategy_meeting,
        "pre_birth_assessment": map_pre_birth_assessment,
        "household": map_household,
    },
    aliases={
        "cin_plan": "plan",
        "cp_plan": "plan",
        "child_in_need_plan": "plan",
        "child_protection_plan": "plan",
        "strategy": "strategy_meeting",
        "pre_birth": "pre_birth_assessment",
        "household_composition": "household",
    },
)
