"""What the client reads on the contact step: the email warning, voicemail options, and the
channels the practice does not offer.

Kept apart from the template because the warning is also stored with each preference that
accepted it: the record must hold the exact words the client saw.
"""

from __future__ import annotations

EMAIL_WARNING_PARAGRAPHS: tuple[str, ...] = (
    "Email is not fully secure. Messages can be read, misdirected or kept by others on the way, "
    "and what you send us becomes part of your clinical record.",
    "If you give an email address, we will use it for scheduling and administrative matters "
    "only, such as appointment times and billing questions.",
    "Never use email for anything urgent or clinical: it is not monitored for emergencies. In a "
    "crisis, call 911, or call or text 988 (Suicide & Crisis Lifeline) at any time.",
)

EMAIL_ACCEPTANCE = (
    "I have read this warning. I understand email is not fully secure and I still want you to "
    "email me about scheduling and administrative matters only."
)

# Stored with the preference when the box is ticked: the warning, then what the box said.
EMAIL_WARNING_TEXT = "\n\n".join((*EMAIL_WARNING_PARAGRAPHS, EMAIL_ACCEPTANCE))

# Same keys as choices.VOICEMAIL_RULES, worded for the client choosing (the staff labels there
# say "your first name" meaning the clinician's, which would confuse a client).
VOICEMAIL_OPTIONS: tuple[tuple[str, str], ...] = (
    ("none", "No, please don't leave voicemail"),
    ("callback_only", "Yes, but only the caller's first name and a callback number"),
    ("practice_name", "Yes, and the message may say the name of the practice"),
    ("details", "Yes, and the message may include appointment details"),
)

NOT_OFFERED: tuple[tuple[str, str], ...] = (
    (
        "Text messages (SMS)",
        "Texts are not secure, can show up on a locked screen, and may not be read in time.",
    ),
    (
        "Messages on social networks (Facebook, Instagram, LinkedIn, etc.)",
        "They are not secure, may not be read in time, and a connection or message can show "
        "others that you are a client.",
    ),
    (
        "Public replies or comments",
        "Anyone can read them, so they could reveal that you are a client.",
    ),
)

NOT_OFFERED_SUMMARY = (
    "Not offered: text messages, social-network messages and public replies "
    "(not secure, may not be read in time, can reveal you are a client)."
)
