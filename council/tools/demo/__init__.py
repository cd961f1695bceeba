"""Demo data: Northshire County Council, about 150 providers of every kind, its commissioning
history since April 2023 (needs, decisions, agreements with variations, extensions, business
cases, spend and endings, a collaborative commission, lessons), loaded by `council demo` and by
`make run`. The tables are in `data`, the loading in `loader`."""

from council.tools.demo.loader import (
    DemoError,
    DemoSummary,
    demo_loaded,
    load_demo,
    publish,
    summarise,
)

__all__ = ["DemoError", "DemoSummary", "demo_loaded", "load_demo", "publish", "summarise"]
