"""JOFI's reference data: the assessment catalog, system score profiles, score definitions, occupations.

This is "live reference data": the same in every account and in both modes (the docs say
`/assessments` answers the real catalog even to a test key).
"""

from __future__ import annotations

from dataclasses import dataclass

PRESCREEN, PERSONALITY, THINKING, INTERESTS = 5, 6, 7, 8


@dataclass(frozen=True)
class Assessment:
    id: int
    short_name: str
    display_name: str

    def ref(self) -> dict:
        """The nested `{id, short_name, display_name}` shape used in events and user defaults."""
        return {"id": self.id, "short_name": self.short_name, "display_name": self.display_name}


ASSESSMENTS: dict[int, Assessment] = {
    a.id: a
    for a in (
        Assessment(PRESCREEN, "Prescreen", "JOFI Prescreen"),
        Assessment(PERSONALITY, "Personality", "JOFI Personality Traits"),
        Assessment(THINKING, "Thinking", "JOFI Thinking Skills"),
        Assessment(INTERESTS, "Interests", "JOFI Career Interests"),
    )
}


@dataclass(frozen=True)
class ScoreProfile:
    id: int
    short_name: str
    display_name: str
    riasec_profile: str


SCORE_PROFILES: tuple[ScoreProfile, ...] = (
    ScoreProfile(201, "JOFI-112-CE", "Management Zone 2", "CE"),
    ScoreProfile(202, "JOFI-113-CE", "Management Zone 3", "CE"),
    ScoreProfile(295, "JOFI-295-AS", "Healthcare Practitioners and Technical Zone 5", "AS"),
    ScoreProfile(296, "JOFI-534-CR", "Transportation and Material Moving Zone 4", "CR"),
)


@dataclass(frozen=True)
class ScoreDefinition:
    """One `score` object of a scorecard section; facets share the shape, minus their own facets."""

    id: int
    display_name: str
    short_name: str
    description: str
    facets: tuple["ScoreDefinition", ...] = ()


def _score(id_: int, name: str, short: str, facets: tuple[ScoreDefinition, ...] = ()) -> ScoreDefinition:
    return ScoreDefinition(id_, name, short, f"How the test taker scores on {name.lower()}.", facets)


# Scorecard sections and the assessment whose completion fills each one (section 8.7).
SECTIONS: dict[str, tuple[int, tuple[ScoreDefinition, ...]]] = {
    "thinking_skills": (
        THINKING,
        (
            _score(
                1,
                "Thinking Skills Overall",
                "think",
                (
                    _score(2, "Reading", "think-read"),
                    _score(3, "Forms", "think-forms"),
                    _score(4, "Numbers", "think-num"),
                    _score(5, "Logic", "think-logic"),
                ),
            ),
        ),
    ),
    "personality_traits": (
        PERSONALITY,
        (
            _score(10, "Drive", "pers-drive", (_score(11, "Achievement", "pers-achieve"), _score(12, "Energy", "pers-energy"))),
            _score(13, "Dependability", "pers-depend", (_score(14, "Structure", "pers-struct"), _score(15, "Rule Following", "pers-rules"))),
            _score(16, "Sociability", "pers-social", (_score(17, "Warmth", "pers-warmth"), _score(18, "Influence", "pers-influence"))),
            _score(19, "Composure", "pers-composure", (_score(20, "Calm", "pers-calm"),)),
        ),
    ),
    "career_interests": (
        INTERESTS,
        tuple(
            _score(30 + i, name, f"int-{name[0].lower()}")
            for i, name in enumerate(("Realistic", "Investigative", "Artistic", "Social", "Enterprising", "Conventional"))
        ),
    ),
}
RIASEC_SCORE_IDS = {30 + i: letter for i, letter in enumerate("RIASEC")}


@dataclass(frozen=True)
class Occupation:
    onet_code: str
    title: str
    riasec: str
    zone: int


OCCUPATIONS: tuple[Occupation, ...] = (
    Occupation("53-7062.00", "Laborers and Freight, Stock, and Material Movers", "RC", 1),
    Occupation("35-2021.00", "Food Preparation Workers", "RC", 1),
    Occupation("41-2011.00", "Cashiers", "CE", 1),
    Occupation("43-4051.00", "Customer Service Representatives", "CES", 2),
    Occupation("53-3032.00", "Heavy and Tractor-Trailer Truck Drivers", "RC", 2),
    Occupation("31-1131.00", "Nursing Assistants", "SR", 2),
    Occupation("43-6014.00", "Secretaries and Administrative Assistants", "CE", 3),
    Occupation("49-3023.00", "Automotive Service Technicians and Mechanics", "RIC", 3),
    Occupation("41-3091.00", "Sales Representatives of Services", "EC", 3),
    Occupation("29-2061.00", "Licensed Practical and Licensed Vocational Nurses", "SR", 3),
    Occupation("11-9051.00", "Food Service Managers", "EC", 4),
    Occupation("13-2011.00", "Accountants and Auditors", "CE", 4),
    Occupation("29-1141.00", "Registered Nurses", "SIC", 4),
    Occupation("27-1024.00", "Graphic Designers", "AER", 4),
    Occupation("15-1252.00", "Software Developers", "ICR", 4),
    Occupation("11-1021.00", "General and Operations Managers", "EC", 4),
    Occupation("29-1228.00", "Physicians, All Other", "IS", 5),
    Occupation("19-3032.00", "Industrial-Organizational Psychologists", "IES", 5),
    Occupation("25-1066.00", "Psychology Teachers, Postsecondary", "SIA", 5),
    Occupation("29-1071.00", "Physician Assistants", "SI", 5),
)
