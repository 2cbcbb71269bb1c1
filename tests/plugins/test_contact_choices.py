"""Tests for the contact-preferences parser (portal_contact.choices)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal_contact.choices import (
    DUPLICATE_PHONE_MESSAGE,
    EMAIL_WARNING_MESSAGE,
    FIELD_NAMES,
    INVALID_PHONE_MESSAGE,
    KIND_MISSING_MESSAGE,
    NO_CHANNEL_MESSAGE,
    PHONE_KINDS,
    PHONE_TOO_LONG_MESSAGE,
    VOICEMAIL_MISSING_MESSAGE,
    VOICEMAIL_RULES,
    ContactChoices,
    EmailChoice,
    ParseResult,
    PhoneChoice,
    parse_contact_form,
)
from portal_contact.prefill import form_values

# 555-01XX numbers are reserved for fiction, but libphonenumber only accepts them behind a real
# area code: "(555) 555-0101" itself is not a valid US number.
CELL = "(202) 555-0101"
LANDLINE = "202-555-0102"
WORK = "+1 201 555 0123"
UK = "+44 20 7946 0958"


def phone(
    i: int, number: str, kind: str = "cell", voicemail: str = "none", rank: str = ""
) -> dict[str, str]:
    return {
        f"phone_{i}_number": number,
        f"phone_{i}_kind": kind,
        f"phone_{i}_voicemail": voicemail,
        f"phone_{i}_rank": rank,
    }


def email(address: str, accepted: bool = True, rank: str = "") -> dict[str, str]:
    form = {"email_address": address, "email_rank": rank}
    if accepted:
        form["email_warning_accepted"] = "yes"
    return form


def ok(form: dict[str, Any], **kwargs: str) -> ContactChoices:
    result = parse_contact_form(form, **kwargs)
    assert result.errors == {}
    assert result.choices is not None
    return result.choices


def errors(form: dict[str, Any], **kwargs: str) -> dict[str, str]:
    result = parse_contact_form(form, **kwargs)
    assert result.choices is None
    assert result.errors
    return result.errors


# --- valid input -------------------------------------------------------------------------


def test_single_phone() -> None:
    choices = ok(phone(0, f"  {CELL} ", voicemail="practice_name"))
    assert choices.phones == (
        PhoneChoice("+12025550101", "(202) 555-0101", "cell", "practice_name", 1),
    )
    assert choices.email is None
    assert choices.email_warning_accepted is False


def test_phone_in_second_row_only() -> None:
    choices = ok(phone(1, LANDLINE, kind="landline"))
    assert [p.number_e164 for p in choices.phones] == ["+12025550102"]
    assert choices.phones[0].rank == 1


def test_empty_rows_ignored_even_with_kind_and_voicemail() -> None:
    form = phone(0, CELL) | phone(1, "", kind="work", voicemail="details", rank="9")
    choices = ok(form)
    assert len(choices.phones) == 1


def test_several_phones_with_ranks() -> None:
    form = (
        phone(0, CELL, rank="3")
        | phone(1, LANDLINE, kind="landline", voicemail="callback_only", rank="1")
        | phone(2, WORK, kind="work", voicemail="details", rank="2")
    )
    choices = ok(form)
    assert [(p.kind, p.rank) for p in choices.phones] == [("landline", 1), ("work", 2), ("cell", 3)]
    assert choices.phones[1].display == "(201) 555-0123"


def test_ranks_default_to_form_order_phones_then_email() -> None:
    choices = ok(phone(0, CELL) | phone(2, WORK, kind="work") | email("jo@example.com"))
    assert [p.rank for p in choices.phones] == [1, 2]
    assert choices.email == EmailChoice("jo@example.com", 3)


def test_partial_ranks_fill_the_free_slots_in_form_order() -> None:
    form = phone(0, CELL) | phone(1, LANDLINE, kind="landline") | email("jo@example.com", rank="1")
    choices = ok(form)
    assert choices.email is not None and choices.email.rank == 1
    assert [(p.number_e164, p.rank) for p in choices.phones] == [
        ("+12025550101", 2),
        ("+12025550102", 3),
    ]


def test_email_only_with_warning_accepted() -> None:
    choices = ok(email("  Jo@Example.COM "))
    assert choices.phones == ()
    assert choices.email == EmailChoice("Jo@example.com", 1)  # domain lower-cased
    assert choices.email_warning_accepted is True


def test_foreign_number_is_shown_in_international_format() -> None:
    choices = ok(phone(0, UK, kind="landline"))
    assert choices.phones[0].number_e164 == "+442079460958"
    assert choices.phones[0].display == "+44 20 7946 0958"


def test_foreign_number_is_national_in_its_own_region() -> None:
    choices = ok(phone(0, "020 7946 0958"), default_region="GB")
    assert choices.phones[0].display == "020 7946 0958"


def test_same_calling_code_counts_as_domestic() -> None:
    # Toronto from a US practice: dialled like a domestic long-distance number.
    assert ok(phone(0, "+1 416 555 0101")).phones[0].display == "(416) 555-0101"


def test_extension_is_kept_in_display() -> None:
    p = ok(phone(0, "202-555-0101 ext. 12", kind="work")).phones[0]
    assert p.number_e164 == "+12025550101"
    assert p.display == "(202) 555-0101 ext. 12"


def test_values_are_trimmed_and_kept() -> None:
    form = phone(0, f" {CELL} ", kind=" cell ") | {"email_address": " nope ", "unrelated": "x"}
    result = parse_contact_form(form)
    assert result.values["phone_0_number"] == CELL
    assert result.values["phone_0_kind"] == "cell"
    assert result.values["email_address"] == "nope"
    assert result.values["email_warning_accepted"] == ""
    assert set(result.values) == set(FIELD_NAMES)


# --- email -------------------------------------------------------------------------------


def test_email_without_warning_is_rejected() -> None:
    errs = errors(email("jo@example.com", accepted=False))
    assert errs == {"email_warning_accepted": EMAIL_WARNING_MESSAGE}


@pytest.mark.parametrize("ticked", ["no", "on", "YES!", ""])
def test_email_warning_needs_exactly_yes(ticked: str) -> None:
    form = {"email_address": "jo@example.com", "email_warning_accepted": ticked}
    assert "email_warning_accepted" in errors(form)


def test_ticked_box_without_email_is_harmless() -> None:
    choices = ok(phone(0, CELL) | {"email_warning_accepted": "yes"})
    assert choices.email is None


@pytest.mark.parametrize("address", ["jo", "jo@", "@example.com", "jo@@example.com", "jo@x.test"])
def test_invalid_email(address: str) -> None:
    message = errors(email(address))["email_address"]
    assert message.startswith("This doesn't look like a valid email address.")
    assert len(message) > len("This doesn't look like a valid email address.")


def test_email_too_long() -> None:
    message = errors(email("a" * 250 + "@example.com"))["email_address"]
    assert "too long" in message and "254" in message


# --- phone errors ------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["12345", "not a number", "555-0101", "(555) 555-0101", "+"])
def test_invalid_numbers(number: str) -> None:
    assert errors(phone(0, number)) == {"phone_0_number": INVALID_PHONE_MESSAGE}


def test_number_too_long_is_rejected_before_parsing() -> None:
    assert errors(phone(0, "2" * 41))["phone_0_number"] == PHONE_TOO_LONG_MESSAGE


def test_kind_and_voicemail_are_required() -> None:
    errs = errors(phone(0, CELL, kind="", voicemail=""))
    assert errs == {
        "phone_0_kind": KIND_MISSING_MESSAGE,
        "phone_0_voicemail": VOICEMAIL_MISSING_MESSAGE,
    }


@pytest.mark.parametrize("kind", ["sms", "Cell", "whatsapp", "__class__"])
def test_unknown_kind(kind: str) -> None:
    assert set(errors(phone(0, CELL, kind=kind))) == {"phone_0_kind"}


@pytest.mark.parametrize("voicemail", ["yes", "NONE", "text"])
def test_unknown_voicemail_rule(voicemail: str) -> None:
    assert set(errors(phone(0, CELL, voicemail=voicemail))) == {"phone_0_voicemail"}


def test_duplicate_number_is_flagged_on_the_second() -> None:
    errs = errors(phone(0, CELL) | phone(2, "+1 202-555-0101", kind="work"))
    assert errs == {"phone_2_number": DUPLICATE_PHONE_MESSAGE}


def test_same_line_with_other_extension_is_not_a_duplicate() -> None:
    choices = ok(phone(0, "202-555-0101 x1", kind="work") | phone(1, "202-555-0101 x2"))
    assert len(choices.phones) == 2


def test_only_three_phone_rows_are_read() -> None:
    choices = ok(phone(0, CELL) | phone(3, LANDLINE))
    assert len(choices.phones) == 1


def test_nothing_given() -> None:
    assert errors({}) == {"__all__": NO_CHANNEL_MESSAGE}
    assert errors(phone(0, "   ") | {"email_address": " "}) == {"__all__": NO_CHANNEL_MESSAGE}


def test_all_errors_reported_at_once() -> None:
    form = phone(0, "12345", kind="") | email("jo@", accepted=False, rank="5")
    assert set(errors(form)) == {
        "phone_0_number",
        "phone_0_kind",
        "email_address",
        "email_warning_accepted",
        "email_rank",
    }


# --- ranks -------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", ["0", "3", "-1", "1.0", "one", "\uff11", "1_0", "9" * 50])
def test_rank_out_of_range_or_not_a_number(rank: str) -> None:
    form = phone(0, CELL) | phone(1, LANDLINE, kind="landline", rank=rank)
    errs = errors(form)
    assert set(errs) == {"phone_1_rank"}
    assert "1 to 2" in errs["phone_1_rank"]


def test_rank_range_counts_only_channels_given() -> None:
    # Row 1 is empty, so there is only one channel and rank 2 is out of range.
    errs = errors(phone(0, CELL, rank="2") | phone(1, "", rank="1"))
    assert errs == {"phone_0_rank": "Use 1, or leave the rank empty."}


def test_duplicate_rank_is_flagged_on_the_later_field() -> None:
    form = phone(0, CELL, rank="1") | email("jo@example.com", rank="1")
    errs = errors(form)
    assert set(errs) == {"email_rank"}
    assert "rank 1" in errs["email_rank"]


def test_ranks_with_leading_zero_and_spaces() -> None:
    choices = ok(phone(0, CELL, rank=" 02 ") | email("jo@example.com", rank="1"))
    assert choices.phones[0].rank == 2


# --- hostile input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"phone_0_number": "x" * 10_000},
        {"phone_0_number": "202\x00555\x000101", "phone_0_kind": "cell\x00"},
        {"email_address": "jo\x00@example.com", "email_warning_accepted": "yes\x00"},
        {"email_address": "é" * 10_000, "email_rank": "1" * 10_000},
        {"phone_0_rank": "\U0001f600", "phone_0_number": "\u202e2025550101"},
        {"phone_0_number": None, "email_address": 42, "phone_1_number": ["2025550101"]},
        {"email_address": "jo@" + "a" * 300 + ".com", "email_warning_accepted": "yes"},
        {"email_address": "jo@xn--zz.com", "email_warning_accepted": "yes"},
    ],
)
def test_hostile_input_never_raises(form: dict[str, Any]) -> None:
    result = parse_contact_form(form)
    assert isinstance(result, ParseResult)
    assert result.choices is None and result.errors
    assert all(len(v) <= 300 and "\x00" not in v for v in result.values.values())


def test_not_a_mapping_and_bad_region() -> None:
    assert parse_contact_form(None).errors == {"__all__": NO_CHANNEL_MESSAGE}  # type: ignore[arg-type]
    # An unknown region can still take international numbers, just not national ones.
    assert errors(phone(0, CELL), default_region="XX") == {"phone_0_number": INVALID_PHONE_MESSAGE}
    assert ok(phone(0, UK), default_region="XX").phones[0].display == "+44 20 7946 0958"
    assert ok(phone(0, CELL), default_region="us").phones[0].display == CELL


# --- storage and plain words -------------------------------------------------------------


def full_choices() -> ContactChoices:
    form = (
        phone(0, CELL, voicemail="practice_name", rank="2")
        | phone(1, UK, kind="landline", voicemail="none", rank="3")
        | phone(2, LANDLINE, kind="work", voicemail="callback_only", rank="4")
        | email("jo@example.com", rank="1")
    )
    return ok(form)


def test_json_round_trip() -> None:
    choices = full_choices()
    data = json.loads(json.dumps(choices.as_json()))
    assert ContactChoices.from_json(data) == choices
    assert list(data) == ["version", "phones", "email", "email_warning_accepted"]
    assert list(data["phones"][0]) == ["number_e164", "display", "kind", "voicemail", "rank"]

    phone_only = ok(phone(0, CELL))
    assert ContactChoices.from_json(json.loads(json.dumps(phone_only.as_json()))) == phone_only


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(version=2),
        lambda d: d.pop("phones"),
        lambda d: d["phones"][0].update(kind="sms"),
        lambda d: d["phones"][0].update(rank=True),
        lambda d: d["email"].update(rank=9),
        lambda d: d.update(email_warning_accepted=False),
        lambda d: d.update(phones="oops"),
    ],
)
def test_from_json_rejects_malformed_data(mutate: Any) -> None:
    data = full_choices().as_json()
    mutate(data)
    with pytest.raises(ValueError):
        ContactChoices.from_json(data)


def test_plain_words_in_rank_order() -> None:
    assert full_choices().plain_words() == [
        "Email jo@example.com: scheduling and administrative matters only",
        "Cell (202) 555-0101: voicemail OK, may name the practice",
        "Landline +44 20 7946 0958: No voicemail",
        "Work (202) 555-0102: voicemail OK, first name and a callback number only, "
        "no practice name",
    ]


def test_plain_words_say_no_email() -> None:
    assert ok(phone(0, CELL, voicemail="details")).plain_words() == [
        "Cell (202) 555-0101: voicemail OK, may include appointment details",
        "No email.",
    ]


# --- properties --------------------------------------------------------------------------

_interesting_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from([CELL, LANDLINE, WORK, UK, "12345", "jo@example.com", "yes", "1", "2", "3"]),
    st.sampled_from(list(PHONE_KINDS) + list(VOICEMAIL_RULES)),
    st.text(alphabet="0123456789+-() x", max_size=45),
)
_known_fields = st.dictionaries(st.sampled_from(FIELD_NAMES), _interesting_text)
_any_fields = st.dictionaries(st.text(max_size=20), st.text(max_size=300), max_size=20)


def _check_invariants(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert (result.choices is None) == bool(result.errors)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.errors.items())
    assert set(result.values) == set(FIELD_NAMES)
    if result.choices is not None:
        data = json.loads(json.dumps(result.choices.as_json()))
        assert ContactChoices.from_json(data) == result.choices
        assert result.choices.plain_words()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=st.one_of(_any_fields, _known_fields), region=st.sampled_from(["US", "GB", "XX", ""]))
def test_arbitrary_forms_never_raise(form: dict[str, str], region: str) -> None:
    _check_invariants(parse_contact_form(form, default_region=region))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from([CELL, LANDLINE, WORK, UK]),
            st.sampled_from(list(PHONE_KINDS)),
            st.sampled_from(list(VOICEMAIL_RULES)),
        ),
        max_size=3,
        unique_by=lambda row: row[0],
    ),
    with_email=st.booleans(),
)
def test_valid_forms_get_contiguous_ranks(
    rows: list[tuple[str, str, str]], with_email: bool
) -> None:
    form: dict[str, str] = {}
    for i, (number, kind, voicemail) in enumerate(rows):
        form |= phone(i, number, kind=kind, voicemail=voicemail)
    if with_email:
        form |= email("jo@example.com")
    result = parse_contact_form(form)
    _check_invariants(result)
    if not rows and not with_email:
        assert result.errors == {"__all__": NO_CHANNEL_MESSAGE}
        return
    assert result.choices is not None
    ranks = [p.rank for p in result.choices.phones]
    if result.choices.email is not None:
        ranks.append(result.choices.email.rank)
    assert sorted(ranks) == list(range(1, len(rows) + with_email + 1))


# --- back into the form (portal_contact.prefill) -----------------------------------------


def test_form_values_read_back_as_the_same_choices() -> None:
    choices = full_choices()
    values = form_values(choices)
    assert set(values) == set(FIELD_NAMES)
    # The warning is accepted afresh each time, never pre-ticked.
    assert values["email_warning_accepted"] == ""
    assert ok({**values, "email_warning_accepted": "yes"}) == choices
    phone_only = ok(phone(0, "202-555-0101 ext. 12", kind="work") | phone(1, UK))
    assert ok(form_values(phone_only)) == phone_only


def test_form_values_without_choices_are_empty() -> None:
    assert form_values(None) == dict.fromkeys(FIELD_NAMES, "")
