"""Install and remove the ``/sessions`` skill for Claude Code, owning only what we wrote.

Claude Code reads a skill from ``.claude/skills/NAME/SKILL.md`` in a project, or from
``~/.claude/skills/NAME/SKILL.md`` for every project of the user. The text ships inside
the package (``looprunner/skill/SKILL.md``). Next to it we keep a manifest,
``.looprunner-skill.json``: the version, each file's SHA-256 as written, and the folders
the install created. With it a reinstall updates the skill in place, and an uninstall
removes exactly what was installed: a file the user edited since, or one we never wrote,
is left where it is, with a message saying why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from looprunner.errors import EXIT_CONFLICT, LooprunnerError

SKILL_NAME = "sessions"
SKILL_FILE = "SKILL.md"
MANIFEST = ".looprunner-skill.json"


class SkillConflictError(LooprunnerError):
    """A skill file stands where we would write, and it is not ours as we wrote it."""

    exit_code = EXIT_CONFLICT
    type = "conflict"


@attrs.frozen
class Outcome:
    """What an install or uninstall did: the folder, and each file's fate."""

    path: Path
    action: str  # installed | updated | unchanged | removed | nothing
    removed: tuple[str, ...] = ()
    left: tuple[tuple[str, str], ...] = ()  # (file, why it was left alone)

    def as_dict(self) -> dict[str, Any]:
        """Return the ``--json`` answer."""
        return {
            "skill": SKILL_NAME,
            "path": str(self.path),
            "action": self.action,
            "removed": list(self.removed),
            "left": [{"file": name, "why": why} for name, why in self.left],
        }


def skill_text() -> str:
    """Return the skill as shipped with this version of looprunner."""
    return (resources.files("looprunner") / "skill" / SKILL_FILE).read_text(encoding="utf-8")


def skills_folder(project: Path, *, user: bool) -> Path:
    """Return where Claude Code looks for skills: the project's, or the user's own."""
    base = Path.home() if user else project
    return base / ".claude" / "skills"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(folder: Path) -> dict[str, Any] | None:
    """Read the manifest; a missing or unreadable one means we own nothing here."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return None
    return data


def _write(path: Path, text: str) -> None:
    from looprunner.store.atomic import write_atomic

    write_atomic(path, text)


def install(skills: Path, *, force: bool = False) -> Outcome:
    """Write the skill into ``skills/sessions/``, updating our earlier install in place.

    Refuses (exit 3) to overwrite a ``SKILL.md`` we did not write, or one edited since
    we wrote it, unless ``force``; nothing is changed then.
    """
    from looprunner._version import __version__

    folder = skills / SKILL_NAME
    target = folder / SKILL_FILE
    text = skill_text()
    manifest = _manifest(folder)
    action = "installed"
    if target.is_file():
        current = _sha(target.read_bytes())
        recorded = (manifest or {}).get("files", {}).get(SKILL_FILE)
        if current != recorded and not force:
            why = (
                "was edited since looprunner installed it"
                if manifest is not None
                else "was not installed by looprunner"
            )
            raise SkillConflictError(f"{target} {why}; move it away, or pass --force to replace it")
        action = "unchanged" if current == _sha(text.encode("utf-8")) else "updated"
    created = [str(p) for p in (folder, *folder.parents) if not p.exists()]
    created += [d for d in (manifest or {}).get("created", []) if d not in created]
    folder.mkdir(parents=True, exist_ok=True)
    _write(target, text)
    record = {
        "installed_by": "looprunner",
        "version": __version__,
        "files": {SKILL_FILE: _sha(text.encode("utf-8"))},
        "created": created,
    }
    _write(folder / MANIFEST, json.dumps(record, indent=2) + "\n")
    return Outcome(folder, action)


def uninstall(skills: Path) -> Outcome:
    """Remove what :func:`install` wrote, and the folders it created once they are empty.

    A file edited since the install, or one looprunner never wrote, stays, and the
    outcome says so.
    """
    folder = skills / SKILL_NAME
    manifest = _manifest(folder)
    if manifest is None:
        if (folder / SKILL_FILE).exists():
            why = "not installed by looprunner (no manifest); remove it yourself"
            return Outcome(folder, "nothing", left=((SKILL_FILE, why),))
        return Outcome(folder, "nothing")
    removed: list[str] = []
    left: list[tuple[str, str]] = []
    for name, digest in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            continue
        if _sha(path.read_bytes()) == digest:
            path.unlink()
            removed.append(name)
        else:
            left.append((name, "edited since looprunner installed it; kept"))
    (folder / MANIFEST).unlink()
    for created in sorted(manifest.get("created", []), key=len, reverse=True):
        path = Path(created)
        if path == folder or folder in path.parents or path in folder.parents:
            with contextlib.suppress(OSError):  # only our own folders, only once empty
                path.rmdir()
    return Outcome(folder, "removed", removed=tuple(removed), left=tuple(left))
