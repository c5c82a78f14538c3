"""``python -m bench.launch``: the service with experimental process-level tuning, for A/B runs.

``BENCH_TUNE`` is a comma-separated list applied on top of whatever app/runner.py does:

    notune          switch app/runner.py's own tuning off (as bench.untuned does)
    freeze          gc.collect() + gc.freeze() once uvicorn has started (lifespan done)
    gc=A:B:C        gc.set_threshold(A, B, C)
    switch=S        sys.setswitchinterval(S)

This is how the tuning that app/runner.py now applies was chosen (docs/performance.md).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import app.runner
from app.cli import main

options = [o.strip() for o in os.environ.get("BENCH_TUNE", "").split(",") if o.strip()]

if "notune" in options:
    app.runner.tune_process = lambda: None
    app.runner.freeze_startup_heap = lambda: None

for option in options:
    if option.startswith("gc="):
        a, b, c = (int(x) for x in option[3:].split(":"))
        gc.set_threshold(a, b, c)
    elif option.startswith("switch="):
        sys.setswitchinterval(float(option[7:]))

if "freeze" in options:
    _startup = app.runner.GracefulServer.startup

    async def startup(self: Any, sockets: Any = None) -> None:
        await _startup(self, sockets)
        gc.collect()
        gc.freeze()

    app.runner.GracefulServer.startup = startup  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
