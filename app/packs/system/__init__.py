"""The system pack: what the service says about itself.

Tools ``health_check`` (the readiness data: dependencies with latency, breakers, memory) and
``server_info`` (version, packs, protocol versions); resources ``config://service`` (effective
non-secret settings, admin only) and ``docs://tools`` (a reference of the tools the caller may
use); the ``code-review`` prompt.
"""

from __future__ import annotations

from app.packs.api import NoSettings, Pack, PackContext
from app.packs.system import info, prompts, reference


def setup(context: PackContext[NoSettings]) -> None:
    info.register(context)
    reference.register(context)
    prompts.register(context)


pack = Pack("system", setup)
