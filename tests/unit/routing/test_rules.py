"""Rules R1 to R10 of routing.md, one small family each."""

from __future__ import annotations

import datetime as dt

from tests.unit.routing.world import World, notes, person, withheld


def _family(w: World) -> tuple[dict, dict, dict]:
    """A baby, mother and father at three practices, a health visitor, born 2021-03-01."""
    w.standard_orgs()
    baby, mother, father = person("2021-03-01"), person("1995-01-01"), person("1993-01-01")
    w.register(mother, "GP-A")
    w.register(father, "GP-B")
    w.register(baby, "GP-C", on="2021-03-10")
    w.birth(baby, mother, father, hv="HV")
    return baby, mother, father


def test_r1_incident_reaches_childs_professionals_csc_and_both_gps() -> None:
    """R1: every level of incident reaches the child's GP and health visitor, the CSC, victim's and perpetrator's GP."""
    w = World()
    baby, mother, father = _family(w)
    _, out = w.incident(mother, father, present=[baby], at="2021-06-01T22:00:00")
    got = notes(out)
    assert set(got) == {"GP-A", "GP-B", "GP-C", "HV", "CSC"}
    assert all(n.priority == "urgent" for n in got.values())  # a child under 1
    assert got["GP-B"].flags == ("perpetrator_record", "restricted")
    assert got["GP-A"].flags == ("restricted",)
    assert got["HV"].flags == () and got["HV"].view == "full"


def test_r1_high_risk_or_referral_reaches_marac_and_is_urgent() -> None:
    """R1: MARAC hears when the risk is high or there is a referral; high risk is urgent."""
    w = World()
    w.standard_orgs()
    victim = person("1990-01-01")
    _, out = w.incident(victim, None, risk="high")
    assert notes(out)["MARAC"].priority == "urgent"
    _, out = w.incident(victim, None, risk="medium", marac=True)
    assert "MARAC" in notes(out) and notes(out)["MARAC"].priority == "routine"
    _, out = w.incident(victim, None, risk="medium")
    assert "MARAC" not in notes(out)


def test_r1_victims_active_pregnancy_brings_in_the_midwifery_service() -> None:
    """R1: the midwifery service of the victim's active pregnancy hears, urgently (an unborn child)."""
    w = World()
    w.standard_orgs()
    mother = person("1995-01-01")
    w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-01T10:00:00",
        booking_ref="B",
        mother=mother,
        expected_father=None,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    _, out = w.incident(mother, None, at="2021-03-01T10:00:00")
    assert notes(out)["MW"].priority == "urgent"
    assert "CSC" in notes(out)  # the unborn child's responsible CSC (the area's)


def test_r2_child_in_need_plan_reaches_professionals_and_every_carers_gp() -> None:
    """R2: the child's professionals and the GP of each carer, fathers included, routine."""
    w = World()
    baby, _, _ = _family(w)
    _, out = w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2021-06-01T10:00:00",
        plan_ref="P",
        child=baby,
        status="started",
        summary="s",
        next_review=None,
    )
    got = notes(out)
    assert set(got) == {"GP-A", "GP-B", "GP-C", "HV"}
    assert {n.priority for n in got.values()} == {"routine"}
    assert "POLICE" not in got


def test_r3_child_protection_plan_adds_police_and_is_urgent_on_start() -> None:
    """R3: as R2 and the area's police; urgent when started, routine after."""
    w = World()
    baby, _, _ = _family(w)
    _, out = w.send(
        "csc.child_protection_plan",
        "CSC",
        "2021-06-01T10:00:00",
        plan_ref="P",
        child=baby,
        status="started",
        category="neglect",
        summary="s",
        next_review=None,
    )
    assert set(notes(out)) == {"GP-A", "GP-B", "GP-C", "HV", "POLICE"}
    assert notes(out)["POLICE"].priority == "urgent"
    _, out = w.send(
        "csc.child_protection_plan",
        "CSC",
        "2021-07-01T10:00:00",
        plan_ref="P",
        child=baby,
        status="reviewed",
        category="neglect",
        summary="s",
        next_review=None,
    )
    assert notes(out)["POLICE"].priority == "routine"


def test_r4_section_47_strategy_meeting_is_urgent_and_reaches_fathers_gp() -> None:
    """R4: a section 47 strategy meeting reaches every carer's GP urgently."""
    w = World()
    baby, _, _ = _family(w)
    _, out = w.send(
        "csc.strategy_meeting",
        "CSC",
        "2021-06-01T10:00:00",
        meeting_ref="M",
        children=[baby],
        held_on=dt.date(2021, 6, 1),
        decision="section_47",
        summary="s",
    )
    assert notes(out)["GP-B"].priority == "urgent"
    _, out = w.send(
        "csc.strategy_meeting",
        "CSC",
        "2021-06-02T10:00:00",
        meeting_ref="M2",
        children=[baby],
        held_on=dt.date(2021, 6, 2),
        decision="no_further_action",
        summary="s",
    )
    assert notes(out)["GP-B"].priority == "routine"


def test_r5_booking_with_no_history_is_withheld() -> None:
    """R5: no history, no notification, and the decision not to share is recorded."""
    w = World()
    w.standard_orgs()
    _, out = w.send(
        "midwifery.pregnancy_booked",
        "MW",
        booking_ref="B",
        mother=person("1995-01-01"),
        expected_father=None,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    assert notes(out, kind=None) == {}
    assert withheld(out) == [(None, "R5", "no history for mother or expected father")]


def test_r5_booking_with_history_sends_pre_birth_alerts_including_to_the_midwife() -> None:
    """R5: history of either parent sends urgent pre-birth alerts, the booking service included."""
    w = World()
    w.standard_orgs()
    mother, father = person("1995-01-01"), person("1993-01-01")
    w.register(mother, "GP-A")
    w.register(father, "GP-B")
    incident, _ = w.incident(person("1990-01-01"), father, at="2021-01-10T10:00:00")
    _, out = w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-01T10:00:00",
        booking_ref="B",
        mother=mother,
        expected_father=father,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    got = notes(out, kind="pre_birth_alert")
    assert set(got) == {"CSC", "GP-A", "GP-B", "MW"}
    assert {n.priority for n in got.values()} == {"urgent"}
    assert got["GP-B"].flags == ("perpetrator_record", "restricted")
    assert [h["event_id"] for h in got["CSC"].content["history"]] == [incident]


def test_r5_history_window_is_24_months_for_incidents_but_forever_for_plans() -> None:
    """R5: an incident older than 24 months is not history; an old sibling's plan always is."""
    w = World()
    w.standard_orgs()
    mother, older = person("1985-01-01"), person("2005-01-01")
    w.incident(mother, None, at="2015-01-01T10:00:00")
    _, out = w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-01T10:00:00",
        booking_ref="B",
        mother=mother,
        expected_father=None,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    assert notes(out, kind="pre_birth_alert") == {}
    w.household(older, [(mother, "mother", False)], source="CSC")
    w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2012-01-01T10:00:00",
        plan_ref="OLD",
        child=older,
        status="started",
        summary="s",
        next_review=None,
    )
    _, out = w.send(
        "midwifery.pregnancy_booked",
        "MW",
        "2021-02-02T10:00:00",
        booking_ref="B2",
        mother=mother,
        expected_father=None,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    assert "CSC" in notes(out, kind="pre_birth_alert")


def test_r6_birth_goes_to_the_named_health_visitor() -> None:
    """R6: a birth notification goes to the health visiting service it names, routine."""
    w = World()
    w.standard_orgs()
    _, out = w.birth(person("2021-03-01"), person("1995-01-01"), None, hv="HV")
    assert set(notes(out)) == {"HV"} and notes(out)["HV"].priority == "routine"


def test_r7_marac_case_is_urgent_and_not_sent_to_marac() -> None:
    """R7: as R1 for the victim, perpetrator and children, always urgent, never to MARAC itself."""
    w = World()
    baby, mother, father = _family(w)
    _, out = w.send(
        "marac.case_heard",
        "MARAC",
        "2021-08-01T10:00:00",
        marac_ref="M",
        victim=mother,
        perpetrator=father,
        children=[baby],
        heard_on=dt.date(2021, 8, 1),
        actions="plan",
    )
    got = notes(out)
    assert set(got) == {"GP-A", "GP-B", "GP-C", "HV", "CSC"}
    assert {n.priority for n in got.values()} == {"urgent"}


def test_r8_gp_information_goes_nowhere_unless_a_child_has_an_active_plan() -> None:
    """R8: safeguarding information is withheld (a history item) until the person cares for a child on a plan."""
    w = World()
    baby, mother, _ = _family(w)
    _, out = w.send(
        "gp.safeguarding_information",
        "GP-A",
        "2021-05-01T10:00:00",
        person=mother,
        category="substance_misuse",
        summary="s",
    )
    assert notes(out) == {} and withheld(out)[0][:2] == (None, "R8")
    w.send(
        "csc.child_in_need_plan",
        "CSC",
        "2021-05-02T10:00:00",
        plan_ref="P",
        child=baby,
        status="started",
        summary="s",
        next_review=None,
    )
    _, out = w.send(
        "gp.safeguarding_information",
        "GP-A",
        "2021-05-03T10:00:00",
        person=mother,
        category="mental_health",
        summary="s",
    )
    assert set(notes(out)) == {"CSC", "HV"}


def test_r8a_concern_about_a_parent_reaches_csc_hv_and_their_gp() -> None:
    """R8a: a concern about any carer of a child reaches the CSC, the child's HV and the person's GP."""
    w = World()
    _, _, father = _family(w)
    _, out = w.send(
        "adult.concern_about_parent",
        "ADULTS",
        "2021-05-01T10:00:00",
        person=father,
        category="employment_dismissal",
        summary="s",
    )
    got = notes(out)
    assert set(got) == {"CSC", "HV", "GP-B"}
    assert got["GP-B"].flags == ("restricted",)


def test_r8b_pre_birth_assessment_reaches_both_gps_and_the_midwife() -> None:
    """R8b: the mother's GP, the expected father's GP and the midwifery service of the pregnancy."""
    w = World()
    w.standard_orgs()
    mother, father = person("1995-01-01"), person("1993-01-01")
    w.register(mother, "GP-A")
    w.register(father, "GP-B")
    w.send(
        "midwifery.pregnancy_booked",
        "MW",
        booking_ref="B",
        mother=mother,
        expected_father=father,
        expected_date=dt.date(2021, 9, 1),
        midwifery_service="MW",
    )
    _, out = w.send(
        "csc.pre_birth_assessment",
        "CSC",
        assessment_ref="A",
        mother=mother,
        expected_father=father,
        status="requested",
        outcome=None,
    )
    assert set(notes(out)) == {"GP-A", "GP-B", "MW"}


def test_r9_r9b_r10_challenges_are_recorded_and_escalate_when_unanswered() -> None:
    """R9 to the target and the partnership; R9b to the raiser too; R10 escalates at 00:00Z after respond_by."""
    w = World()
    w.standard_orgs()
    child = person("2021-01-01")
    raised, out = w.send(
        "challenge.raised",
        "HV",
        "2022-01-10T10:00:00",
        challenge_ref="C1",
        child=child,
        directed_to="CSC",
        level=1,
        summary="s",
        respond_by=dt.date(2022, 1, 20),
    )
    assert set(notes(out)) == {"CSC", "PSHIP"}
    w.ack(raised, "CSC", "2022-01-11T09:00:00")
    w.ack(raised, "PSHIP", "2022-01-11T09:00:00")
    assert notes(w.run_until("2022-01-20T23:59:59"), kind="escalation") == {}
    esc = notes(w.run_until("2022-01-21T00:00:00"), kind="escalation")
    assert set(esc) == {"CSC", "PSHIP"} and {e.cause for e in esc.values()} == {"unanswered_challenge"}
    assert {e.at for e in esc.values()} == {dt.datetime(2022, 1, 21, tzinfo=dt.UTC)}
    w.send(
        "challenge.raised",
        "HV",
        "2022-02-01T10:00:00",
        challenge_ref="C2",
        child=child,
        directed_to="CSC",
        level=2,
        summary="s",
        respond_by=dt.date(2022, 2, 10),
    )
    _, out = w.send("challenge.resolved", "CSC", "2022-02-05T10:00:00", challenge_ref="C2", outcome="agreed")
    assert set(notes(out)) == {"HV", "PSHIP"}  # the raiser and the partnership; not the resolver itself
    assert [
        n
        for n in notes(w.run_until("2022-03-01T00:00:00"), kind="escalation").values()
        if n.cause == "unanswered_challenge"
    ] == []
