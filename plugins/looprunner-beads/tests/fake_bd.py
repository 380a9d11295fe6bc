"""A fake ``bd`` (beads) for the tests: a real program, installed on PATH as ``bd``.

It keeps its issues in ``.beads/fake-bd.json`` in the project (found from the working
folder upwards, as bd finds ``.beads``) and supports exactly what the plugin and the
test agent use, with bd's flags and ``--json`` shapes:

    bd ready  [--label L]... [--limit N] [--json]     open or in_progress, by priority then id
    bd list   [--status S] [--label L]... [--limit N] [--json]
    bd show   ID [--json]
    bd update ID... --status S [--json]
    bd close  ID... [--reason R] [--json]

Anything else fails the way bd (cobra) does: ``Error: unknown command "x" for "bd"`` or
``Error: unknown flag: --x`` on stderr, exit status 1. Without a database it says
``Error: no beads database found``. ``--limit`` defaults to 10 for ``ready`` and 50 for
``list``, like bd; 0 means no limit. Every call is appended to
``.beads/fake-bd.calls.jsonl`` (argv and working folder). ``FAKE_BD_PRINT`` set in the
environment makes it print that text instead of its answer (for malformed output).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "fake-bd.json"
STATUSES = ("open", "in_progress", "blocked", "deferred", "closed")
#: per command: flag -> (kind, short form); kind is "str", "list", "int"
FLAGS: dict[str, dict[str, tuple[str, str | None]]] = {
    "ready": {"label": ("list", "l"), "limit": ("int", "n")},
    "list": {"status": ("str", "s"), "label": ("list", "l"), "limit": ("int", "n")},
    "show": {},
    "update": {"status": ("str", "s")},
    "close": {"reason": ("str", "r")},
}
DEFAULT_LIMIT = {"ready": 10, "list": 50}


class BdError(Exception):
    pass


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_beads_dir() -> Path:
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / ".beads" / DB_NAME).is_file():
            return folder / ".beads"
    raise BdError(
        "no beads database found\nHint: run 'bd init' to create a database in the current directory"
    )


def load(beads: Path) -> list[dict[str, Any]]:
    data = json.loads((beads / DB_NAME).read_text(encoding="utf-8"))
    return list(data["issues"])


def save(beads: Path, issues: list[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=beads, prefix=".fake-bd.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"issues": issues}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    Path(tmp).replace(beads / DB_NAME)


def parse(command: str, args: list[str]) -> tuple[dict[str, Any], list[str], bool]:
    """Parse cobra-style flags: --name V, --name=V, -x V; --json anywhere."""
    known = FLAGS[command]
    shorts = {short: name for name, (_, short) in known.items() if short}
    values: dict[str, Any] = {}
    positional: list[str] = []
    as_json = False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--json":
            as_json = True
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            name, eq, value = shorts.get(arg[1:2], ""), "", ""
            if not name:
                raise BdError(f"unknown shorthand flag: '{arg[1:2]}' in {arg}")
            if len(arg) > 2:
                eq, value = "=", arg[2:].lstrip("=")
        else:
            positional.append(arg)
            continue
        if name not in known:
            raise BdError(f"unknown flag: --{name}")
        if not eq:
            if i >= len(args):
                raise BdError(f"flag needs an argument: --{name}")
            value = args[i]
            i += 1
        kind = known[name][0]
        if kind == "int":
            try:
                values[name] = int(value)
            except ValueError:
                raise BdError(
                    f'invalid argument "{value}" for "-{known[name][1]}, --{name}" flag: '
                    "strconv.ParseInt: parsing " + json.dumps(value) + ": invalid syntax"
                ) from None
        elif kind == "list":
            values.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
        else:
            values[name] = value
    return values, positional, as_json


def by_id(issues: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        raise BdError("requires at least 1 arg(s), only received 0")
    found = []
    for issue_id in ids:
        match = [issue for issue in issues if issue["id"] == issue_id]
        if not match:
            raise BdError(f"resolving ID {issue_id}: no issue found matching {issue_id!r}")
        found.append(match[0])
    return found


def select(issues: list[dict[str, Any]], flags: dict[str, Any], command: str) -> list[Any]:
    labels = flags.get("label", [])
    chosen = [i for i in issues if all(label in i.get("labels", []) for label in labels)]
    if command == "ready":
        chosen = [i for i in chosen if i["status"] in ("open", "in_progress")]
    elif "status" in flags:
        chosen = [i for i in chosen if i["status"] == flags["status"]]
    chosen.sort(key=lambda i: (i.get("priority", 2), i["id"]))
    limit = flags.get("limit", DEFAULT_LIMIT[command])
    return chosen[:limit] if limit > 0 else chosen


def render(issues: list[dict[str, Any]], as_json: bool, heading: str) -> str:
    if as_json:
        return json.dumps(issues, indent=2)
    if not issues:
        return "\n✨ No open issues\n"
    lines = [f"\n📋 {heading} ({len(issues)} issues):\n"]
    lines += [
        f"{n}. [P{i.get('priority', 2)}] [{i.get('issue_type', 'task')}] {i['id']}: {i['title']}"
        for n, i in enumerate(issues, 1)
    ]
    return "\n".join(lines) + "\n"


def run(argv: list[str]) -> str:
    as_json_global = "--json" in argv
    args = [a for a in argv if a != "--json"]
    if not args:
        raise BdError("a command is required")
    command, rest = args[0], args[1:]
    if command not in FLAGS:
        raise BdError(f'unknown command "{command}" for "bd"\nRun \'bd --help\' for usage.')
    flags, positional, _ = parse(command, rest)
    beads = find_beads_dir()
    with (beads / "fake-bd.calls.jsonl").open("a", encoding="utf-8") as calls:
        calls.write(json.dumps({"argv": argv, "cwd": str(Path.cwd())}) + "\n")
    issues = load(beads)
    if command in ("ready", "list"):
        if positional:
            raise BdError(f'unknown command "{positional[0]}" for "bd {command}"')
        heading = "Ready work" if command == "ready" else "Found"
        return render(select(issues, flags, command), as_json_global, heading)
    targets = by_id(issues, positional)
    if command == "show":
        return render(targets, as_json_global, "Issue")
    if command == "update":
        status = flags.get("status")
        if status is None:
            raise BdError("no updates specified")
        if status not in STATUSES:
            raise BdError(f"invalid status: {status}")
        for issue in targets:
            issue["status"] = status
            issue["updated_at"] = now()
    else:  # close
        for issue in targets:
            issue["status"] = "closed"
            issue["closed_at"] = issue["updated_at"] = now()
            issue["close_reason"] = flags.get("reason", "Closed")
    save(beads, issues)
    if as_json_global:
        return json.dumps(targets, indent=2)
    verb = "Updated issue" if command == "update" else "Closed"
    return "\n".join(f"✓ {verb}: {issue['id']}" for issue in targets)


def main() -> int:
    try:
        out = run(sys.argv[1:])
    except BdError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(os.environ.get("FAKE_BD_PRINT", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
