"""The github pack: GitHub REST tools (repositories, files, issues) for agents.

``MCPS_PACKS=github``. Settings: ``MCPS_GITHUB_API_URL`` (GitHub Enterprise: ``https://HOST/api/v3``),
``MCPS_GITHUB_TOKEN`` (the service's own token; optional: without one the pack reads public data
unauthenticated, at GitHub's lower limit), ``MCPS_GITHUB_MAX_FILE_BYTES``. Scopes: ``github:read``
for the reads, ``github:write`` for ``create_issue``.

Whatever the token can see, every caller holding ``github:read`` can read: give the service a
token scoped to what it is meant to expose (a fine-grained token on chosen repositories).
"""

from __future__ import annotations

from app.packs.api import Pack, PackContext, SharedKey
from app.packs.github.client import GitHub
from app.packs.github.settings import GitHubSettings
from app.packs.github.tools import register_tools

__all__ = ["GITHUB", "GitHub", "GitHubSettings", "pack"]

GITHUB: SharedKey[GitHub] = SharedKey("github.client")  # for packs that require this one (github_tasks)


def setup(context: PackContext[GitHubSettings]) -> None:
    github = GitHub(context.upstreams, context.settings)
    context.share(GITHUB, github)
    register_tools(context, github)


pack = Pack("github", setup, settings=GitHubSettings)
