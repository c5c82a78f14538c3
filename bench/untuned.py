"""``python -m bench.untuned``: the service with app/runner.py's process tuning switched off.

For A/B measurements of that tuning (``scripts/bench compare --targets service,service-untuned``):
everything else, settings included, is the service as ``python -m app`` runs it.
"""

from __future__ import annotations

import sys

import app.runner
from app.cli import main

app.runner.tune_process = lambda: None
app.runner.freeze_startup_heap = lambda: None

if __name__ == "__main__":
    sys.exit(main())
