"""The test packs, installed for this process under the ``mcp_service.packs`` entry-point group.

The subprocess tiers hand a child ``PYTHONPATH`` pointing at a written dist-info; here the same
dist-info goes on this process's ``sys.path``, so ``Settings(packs=["guard"])`` finds the pack as
a pip-installed one would be found. `PACKS` names the same `Pack` objects, for passing them to
`create_app(packs=...)` directly.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.observability import obs_pack
from tests.observability.conftest import install_obs_packs
from tests.support import guard_pack, slow_pack

PACKS = {
    "guard": guard_pack.pack,
    "slow": slow_pack.pack,
    "broken": slow_pack.broken,
    "obs": obs_pack.pack,
}


@contextmanager
def installed(site_dir: Path) -> Iterator[None]:
    """Entry points for every test pack, visible to `importlib.metadata` while the block runs."""
    install_obs_packs(site_dir)
    sys.path.append(str(site_dir))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site_dir))
        importlib.invalidate_caches()
