"""The sync tests' fixtures: a HOME with git set up, the fake workspace, both together."""

from tests.gitrepos import fw, home, hooked_home, ws_home  # noqa: F401  (fixtures)
