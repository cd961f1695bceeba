"""Replaying the shared log into read models: a fast fold (fold), reading ahead (readahead) and
business-time snapshots for views "as of" a date (snapshots)."""
