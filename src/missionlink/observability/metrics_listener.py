"""The API's internal metrics listener: one per ``serve`` process, a port per process.

``missionlink serve --workers N`` runs N processes, each with its own registry (a counter
lives in the process that counted it). Rather than Prometheus's multiprocess mode, which
drops live gauges (``Gauge.set_function``, the database pool gauges) and custom
collectors, every process serves its own registry on a port of its own: the first free
one of ``API_METRICS_PORT`` .. ``API_METRICS_PORT + N - 1``. The scraper lists (or
discovers) all N ports; a process that uvicorn restarts takes the port its predecessor
left free.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Set by ``missionlink serve`` for its processes: how many there are (``--workers``) and
#: the address they bind (``--host``).
PROCESSES_ENV = "MISSIONLINK_SERVE_PROCESSES"
HOST_ENV = "MISSIONLINK_SERVE_HOST"

_started: tuple[int, Any] | None = None
_lock = threading.Lock()


def port_range(first: int, processes: int) -> range:
    return range(first, first + max(1, processes))


def start(first_port: int, *, host: str = "127.0.0.1", processes: int = 1) -> int | None:
    """Serve this process's registry on the first free port of the range; the port, or
    None when the listener is off (``first_port`` 0) or every port of the range is taken
    (logged: the process still serves, and its /metrics on the public port still works)."""
    global _started
    from prometheus_client import start_http_server

    if not first_port:
        return None
    with _lock:
        if _started is not None:
            return _started[0]
        ports = port_range(first_port, processes)
        for port in ports:
            if port > 65535:
                break
            try:
                server, _thread = start_http_server(port, addr=host)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            _started = (port, server)
            log.info("metrics.listening", port=port, host=host, pid=os.getpid())
            return port
        log.warning("metrics.no_free_port", first=ports.start, last=ports.stop - 1,
                    host=host, processes=processes)
        return None


def start_from_env(first_port: int) -> int | None:
    """``start`` with the process count and address ``missionlink serve`` passed down."""
    try:
        processes = int(os.environ.get(PROCESSES_ENV, "1"))
    except ValueError:
        processes = 1
    return start(first_port, host=os.environ.get(HOST_ENV, "127.0.0.1"), processes=processes)


def stop() -> None:
    """Close the listener (tests)."""
    global _started
    with _lock:
        if _started is not None:
            _started[1].shutdown()
            _started[1].server_close()
            _started = None
