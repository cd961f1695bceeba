"""Code shared by the three Council Integrator services: the event envelope, the shared
event log port and its adapters, event stores, the outbox relay, projections, identity."""
