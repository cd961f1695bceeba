"""The activity types providers report delivery against, shipped as data (activity_types.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class ActivityType:
    code: str
    unit: str
    name: str
    description: str


@cache
def activity_types() -> dict[str, ActivityType]:
    raw = json.loads(
        resources.files("council.services.outcomes.domain").joinpath("activity_types.json").read_text()
    )
    return {a["code"]: ActivityType(a["code"], a["unit"], a["name"], a["description"])
            for a in raw["activity_types"]}
