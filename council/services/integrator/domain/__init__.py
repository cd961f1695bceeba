"""The integrator's domain: the network as it stands (read models built from the log) and the
council's commissioning (needs, agreements, lessons), which it owns and records as events."""

from council.services.integrator.domain.agreements import Agreement, AgreementStatus
from council.services.integrator.domain.lessons import Lesson
from council.services.integrator.domain.needs import Need
from council.services.integrator.domain.network import (
    ACTIVE,
    IncubationProgress,
    NetworkCapability,
    NetworkProvider,
    NetworkSummary,
)

__all__ = [
    "ACTIVE",
    "Agreement",
    "AgreementStatus",
    "IncubationProgress",
    "Lesson",
    "Need",
    "NetworkCapability",
    "NetworkProvider",
    "NetworkSummary",
]
