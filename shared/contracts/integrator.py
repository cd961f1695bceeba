"""Events published by the integrator. Commissioning events arrive with the commissioning work;
the module exists so every source service has its place in the catalogue."""

from __future__ import annotations

SOURCE = "integrator"
