"""The benchmark suite: blumycelium next to what users would pick instead
(Huey on SQLite) and next to SQLite's own limits, measured in one run.

Run ``python -m benchmarks`` (``--quick`` for a smoke run). Peers come from
the ``bench`` extra (``pip install -e ".[bench]"``); a missing peer shows as
``n/a`` in its rows.
"""
