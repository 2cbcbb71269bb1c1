"""Stored choices back into form entries, for a client who returns to change them."""

from __future__ import annotations

from portal_contact.choices import FIELD_NAMES, ContactChoices, phone_field


def form_values(choices: ContactChoices | None) -> dict[str, str]:
    """Entries that ``parse_contact_form`` reads back as the same choices (once the email
    warning is ticked again).

    The warning box is left unticked on purpose: each stored preference records its own
    acceptance, so the client accepts again rather than inheriting an earlier tick.
    """
    values = dict.fromkeys(FIELD_NAMES, "")
    if choices is None:
        return values
    for i, phone in enumerate(choices.phones):  # already in rank order
        values[phone_field(i, "number")] = phone.display
        values[phone_field(i, "kind")] = phone.kind
        values[phone_field(i, "voicemail")] = phone.voicemail
        values[phone_field(i, "rank")] = str(phone.rank)
    if choices.email is not None:
        values["email_address"] = choices.email.address
        values["email_rank"] = str(choices.email.rank)
    return values
