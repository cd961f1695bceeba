"""The three services: integrator, provider_registry, outcomes."""
