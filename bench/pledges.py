"""Pledge throughput benchmark on PostgreSQL, against a real ``missionlink serve``.

What it does, in one run (about 1.5 minutes with the defaults):

1. creates its own uniquely named databases (identity, core, pgbench) through the admin URL
   ``MISSIONLINK_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1/postgres``),
   migrates them, and seeds fans (wallet, completed sandbox top-up and its journal transfer,
   so the ledger stays balanced) and streamers straight through SQL;
2. runs ``pgbench`` (TPC-B: ``-i -s 8``, then ``-c 8 -j 2 -T 20``) into its own database on
   the same server, as the yardstick;
3. for each ``--workers`` value starts ``missionlink serve --port <free> --workers N`` as a
   subprocess and drives ``POST /api/v1/missions/{id}/pledges`` with a lean asyncio HTTP/1.1
   client: (a) closed loop, 128 connections, pledges spread over many missions; (b) closed
   loop, all on one hot mission; (c) open loop at half the peak of (a)/(b), for p99;
4. checks the ledger (``missionlink.services.reconcile.check``) and that the pledge rows
   equal the 201 responses, prints the ratios, and drops every database it made, kills the
   server, removes its temp dir (also on failure or Ctrl-C).

Every request carries an ``Idempotency-Key`` (the path a real client takes for money);
``--no-idempotency-key`` measures the bare path. ``--client httpx`` swaps the lean client
for httpx, which on a small machine costs more CPU per request than the server does.
``--profile DIR`` adds a py-spy sampled phase per server (collapsed stacks into DIR and a
summary on stdout); it is not counted in the figures. Results and how to read them: bench/README.md, "Pledges".

``--short`` runs every phase for a couple of seconds against one server, with a short
pgbench, so CI keeps the script working (about 30 s). The exit status is 1 when the run
itself broke: ``reconcile`` fails, the pledge rows do not match the 201s, the server
answered anything but 201, or a phase created nothing. It never depends on a speed.

    .venv/bin/python bench/pledges.py [--short] [--workers 1 2] [--client raw|httpx] [--json out.json]
"""

from __future__ import annotations

import sys

from pledge_bench.run import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:], description=__doc__.split("\n\n")[0]))
