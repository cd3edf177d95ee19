"""Fake identifying details (names, contacts, dates of birth, notes) that ingest must drop.

No value can reach a real person: names come from short lists, e-mail addresses use the reserved
``example.org`` domain and phone numbers the block reserved for drama.
"""

from __future__ import annotations

import numpy as np

from analysis.simulate.layout import random_working_days

FIRST_NAMES = (
    "Aisha", "Ben", "Chloe", "Daniel", "Elif", "Fatima", "George", "Hannah", "Ibrahim", "Jade",
    "Kofi", "Laura", "Mohammed", "Niamh", "Oliver", "Priya", "Quentin", "Rosa", "Samuel", "Tomasz",
    "Uma", "Victor", "Wen", "Xavier", "Yusuf", "Zoe", "Amara", "Callum", "Dilnoza", "Emma",
    "Finley", "Grace", "Harvey", "Isla", "Jamal", "Katarzyna", "Leon", "Maya", "Nikhil", "Olivia",
)
LAST_NAMES = (
    "Adeyemi", "Brown", "Chen", "Davies", "Evans", "Fernandes", "Green", "Hussain", "Ivanova",
    "Jones", "Kowalski", "Lewis", "Murphy", "Nguyen", "O'Brien", "Patel", "Quinn", "Robinson",
    "Smith", "Taylor", "Uddin", "Vasquez", "Walker", "Xu", "Young", "Zielinski", "Ali", "Begum",
    "Campbell", "Doherty", "Edwards", "Fraser", "Gill", "Hughes", "Iqbal", "Khan", "Mensah",
    "Novak", "Okafor", "Wright",
)
# Intake notes as (text before the first name, whether the name appears, text after it).
NOTE_TEMPLATES = (
    ("", True, " reports low mood and poor sleep since the spring."),
    ("Referred by GP; ", True, " prefers evening appointments."),
    ("Works shifts, asked for reminders by text.", False, ""),
    ("Previous episode of depression treated with medication.", False, ""),
    ("", True, " says work stress and money worries are the main problems."),
    ("Self-referral. Lives with partner and two children.", False, ""),
    ("Carer for a parent; ", True, " finds it hard to attend weekly."),
    ("Panic attacks on public transport, avoids the bus.", False, ""),
    ("", True, " was bereaved last year; grief and worry."),
    ("Student, exams in May. Wants to work on worry.", False, ""),
)
# Phone numbers from the block reserved for drama (07700 900000-900999): never a real line.
PHONE_PREFIX = "07700 900"

#: The identifying columns of the session export, in order.
IDENTIFYING_COLUMNS = ("client_name", "email", "phone", "date_of_birth", "record_number", "notes")


def draw_people(
    rng: np.random.Generator,
    layout: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    n_orphans: int,
) -> dict[str, np.ndarray]:
    """Plausible fake identifying details, one set per person (clients, then orphans).

    Names come from short lists (so they repeat, as real names do); record numbers and e-mail
    addresses are unique; e-mails use the reserved ``example.org`` domain and phone numbers the
    block reserved for drama (so phone numbers repeat across clients): no value can reach a real
    person.
    """
    n_people = labels["numbers"].size
    first = np.asarray(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n_people)]
    last = np.asarray(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n_people)]
    record_space = max(9_000_000, 4 * n_people)
    record = rng.choice(record_space, size=n_people, replace=False) + 1_000_000
    record_text = record.astype(str)
    email_local = np.strings.add(
        np.strings.add(np.strings.lower(first), "."),
        np.strings.replace(np.strings.lower(last), "'", ""),
    )
    # The record number in the address keeps addresses unique where names repeat.
    email = np.strings.add(np.strings.add(email_local, record_text), "@example.org")
    phone = np.strings.add(
        PHONE_PREFIX, np.strings.zfill(rng.integers(0, 1000, n_people).astype(str), 3)
    )

    reference = np.concatenate(
        [layout["session_date"][layout["first_row"]], random_working_days(rng, n_orphans)]
    )
    # Adults referred to a talking-therapy service: 18 and over, most in their 20s to 40s.
    age_days = np.rint((18 + np.minimum(rng.gamma(2.0, 9.0, n_people), 70)) * 365.25)
    birth = reference - age_days.astype(np.int64).astype("timedelta64[D]")

    template = rng.integers(0, len(NOTE_TEMPLATES), n_people)
    before = np.asarray([t[0] for t in NOTE_TEMPLATES])[template]
    named = np.asarray([t[1] for t in NOTE_TEMPLATES])[template]
    after = np.asarray([t[2] for t in NOTE_TEMPLATES])[template]
    notes = np.strings.add(np.strings.add(before, np.where(named, first, "")), after)
    return {
        "client_name": np.strings.add(np.strings.add(first, " "), last),
        "email": email,
        "phone": phone,
        "date_of_birth": np.datetime_as_string(birth, unit="D"),
        "record_number": np.strings.add("MRN", record_text),
        "notes": notes,
    }
