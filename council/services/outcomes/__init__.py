"""Outcomes: the measures the council commissions against, and (next) delivery and results."""
