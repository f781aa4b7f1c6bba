"""The pledge benchmark (``python bench/pledges.py``; what it measures: bench/README.md,
"Pledges"), one module per part:

- ``seeding``: fans, streamers, missions and a deep backlog, straight through SQL;
- ``server``: ``missionlink serve`` (and the bare endpoint) under test;
- ``clients``: the two load generators (httpx, raw HTTP/1.1) and the pledge requests;
- ``phases``: a phase's figures, closed and open loops;
- ``pgbench``: the same-run yardstick;
- ``profile``: the py-spy phase and its summary of stacks;
- ``run``: the phases against each server, the verification, the summary, ``main``.

Shared with the other benchmarks: ``benchkit`` (processes, databases, CPU, py-spy).
"""
