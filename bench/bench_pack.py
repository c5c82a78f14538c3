"""The benchmark's tool pack: trivial tools, the same ones the bare-SDK baseline serves.

Installed under the ``mcp_service.packs`` entry-point group at run time (`install`), exactly as a
third-party pack would be, so the service loads it through its normal plugin path. The tools do no
work of their own: what a benchmark measures is the service around them (transport, auth, rate
limit against Redis, metrics, tracing, logs). No cache policy: every call runs the whole chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from app.packs.api import NoSettings, Pack, PackContext
from pydantic import Field

ROOT = Path(__file__).resolve().parents[1]
SCOPE = "bench"


def setup(pack: PackContext[NoSettings]) -> None:

    @pack.tool("echo", description="Echo the text back.", scopes=(SCOPE,), read_only=True)
    async def echo(text: Annotated[str, Field(max_length=1000)]) -> str:
        return text

    @pack.tool("add", description="Add two integers.", scopes=(SCOPE,), read_only=True)
    async def add(a: int, b: int) -> int:
        return a + b


bench = Pack("bench", setup)


def install(site_dir: Path) -> dict[str, str]:
    """Write a dist-info declaring the pack's entry point; returns the env that makes it importable."""
    dist = site_dir / "mcp_service_bench_pack-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp-service-bench-pack\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mcp_service.packs]\nbench = bench.bench_pack:bench\n")
    return {"PYTHONPATH": f"{site_dir}:{ROOT}"}
