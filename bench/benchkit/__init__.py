"""What every benchmark under bench/ shares: nothing here measures anything by itself.

- ``run``: a run that broke (``Broken``), progress lines, SIGTERM unwinding, exit status;
- ``processes``: free ports, servers in their own process group (start, wait, stop),
  the process table, RSS;
- ``databases``: the admin URL, the run's own PostgreSQL databases (create, drop), facts
  about the server;
- ``cpu``: CPU used by this client, a server's process tree and PostgreSQL in a phase;
- ``profiling``: py-spy, found and started against a server;
- ``stats``: percentiles;
- ``machine``: what the run ran on.

The scripts import it as ``benchkit`` (``python bench/<name>.py`` puts bench/ on the path).
"""
