"""The github_tasks pack: ``file_task_as_issue``, files one of the caller's tasks as a GitHub issue.

``MCPS_PACKS=tasks,github,github_tasks``: it requires both packs and works through what they share
(the task store, the GitHub client), so it has no settings of its own. Scopes: ``tasks:write`` and
``github:write`` together.
"""

from __future__ import annotations

from app.packs.api import NoSettings, Pack, PackContext
from app.packs.github import GITHUB
from app.packs.github_tasks import tools
from app.packs.tasks import TASK_STORE


def setup(context: PackContext[NoSettings]) -> None:
    tools.register(context, context.shared(GITHUB), context.shared(TASK_STORE))


pack = Pack("github_tasks", setup, requires=("tasks", "github"))
