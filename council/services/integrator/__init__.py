"""Integrator: the council's own workspace, and the live state of its provider network."""
