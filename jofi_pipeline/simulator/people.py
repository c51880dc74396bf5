"""Made-up names, emails and client identifiers, drawn from a seeded RNG."""

from __future__ import annotations

import random
import string
import uuid

FIRST_NAMES = (
    "Linda", "James", "Maria", "Robert", "Aisha", "Wei", "Carlos", "Priya", "John", "Fatima",
    "Olga", "Kwame", "Sofia", "Daniel", "Mei", "Ahmed", "Grace", "Luis", "Hannah", "Tomas",
    "Nadia", "Samuel", "Elena", "Kenji", "Zara", "Peter", "Amara", "Diego", "Ingrid", "Omar",
)
LAST_NAMES = (
    "Sample", "Smith", "Garcia", "Chen", "Okafor", "Patel", "Johnson", "Nguyen", "Kowalski",
    "Silva", "Müller", "Haddad", "Brown", "Kim", "Rossi", "Ivanova", "Mensah", "Lopez",
    "O'Brien", "Tanaka", "Dubois", "Khan", "Andersen", "Moreau", "Novak", "Ali", "Reyes",
)
ACCOUNT_NAMES = (
    ("CoffeeBean Inc", "The Coffee Company", "coffeebean.example"),
    ("Example Company Inc", None, "example-company.example"),
    ("Northwind Staffing", "Northwind Careers", "northwind.example"),
    ("Bluebird Health", "Bluebird Health System", "bluebird.example"),
    ("Summit Workforce Board", None, "summit-wb.example"),
)
TEAM_NAMES = (
    "Recruiting", "Career Coaching", "Executive Training", "Campus Hiring",
    "Workforce Development", "Leadership Pipeline", "Nursing Residency",
)


def full_name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def email_for(first: str, last: str, serial: int, domain: str) -> str:
    local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
    return f"{local}{serial}@{domain}"


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def person_id(rng: random.Random) -> str | None:
    """Client-supplied: usually a UUID, sometimes another free string, sometimes absent."""
    roll = rng.random()
    if roll < 0.7:
        return uuid4(rng)
    if roll < 0.8:
        return "example_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(21))
    return None


def custom_id(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.5:
        return f"REQ-{rng.randint(1000, 9999)}"
    if roll < 0.7:
        return f"example_Group{rng.randint(1000, 9999)}"
    return None


def phone(rng: random.Random) -> str | None:
    return f"555{rng.randint(1000000, 9999999)}" if rng.random() < 0.4 else None
