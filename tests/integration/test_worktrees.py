"""A session in a git worktree of its own: real repositories, real engines, real git.

The agent is a small program of the test's (the ``command`` provider) that writes a file
where it works, notes its directory and branch, commits, and writes its status where
the engine told it to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from looprunner import Pipeline, Session, Stage
from tests.conftest import tree

Cli = Callable[..., subprocess.CompletedProcess[str]]

AGENT = """
import json, os, pathlib, subprocess, sys
it = os.environ["LOOPRUNNER_ITERATION"]
here = pathlib.Path.cwd()
fail_once = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else None
if fail_once is not None and it == "2" and not fail_once.exists():
    fail_once.write_text("failed once")
    sys.exit(7)
branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"],
                        capture_output=True, text=True, check=True).stdout.strip()
ctx = json.loads(pathlib.Path(os.environ["LOOPRUNNER_CTX"]).read_text())
(here / f"agent-{it}.json").write_text(json.dumps(
    {"cwd": str(here), "branch": branch, "project": ctx["paths"]["project"]}))
subprocess.run(["git", "add", f"agent-{it}.json"], check=True)
subprocess.run(["git", "commit", "-q", "-m", f"iteration {it}"], check=True)
pathlib.Path(os.environ["LOOPRUNNER_STATUS"]).write_text(json.dumps(
    {"decision": "continue", "reason": "more", "summary": f"committed {it}"}))
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits made by the tests and their agents need no git config of the machine's."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "looprunner test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    """The committing agent program, outside the repository."""
    path = tmp_path / "committing_agent.py"
    path.write_text(AGENT)
    return path


def write_work_stage(project: Path, agent: Path, *, iterations: int = 2, extra: str = "") -> None:
    """Stage ``work``: the committing agent, ``iterations`` fixed iterations."""
    folder = project / ".looprunner" / "stages" / "work"
    folder.mkdir(parents=True, exist_ok=True)
    command = json.dumps([sys.executable, str(agent), str(project.parent / "fail-once")])
    (folder / "stage.yaml").write_text(
        f"name: work\nprovider: command\ncommand: {command}\n"
        f"termination:\n  type: fixed\n  iterations: {iterations}\n{extra}"
    )
    (folder / "prompt.md").write_text("Commit one file. Write ${STATUS}.\n")


def init_repo(project: Path) -> str:
    """Make the project a repository with one commit; return that commit."""
    git(project, "init", "-q", "-b", "main")
    (project / "README.md").write_text("a project\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "first")
    return git(project, "rev-parse", "HEAD")


def fail_once(project: Path) -> None:
    """Make the agent exit 7 in iteration 2, once."""
    # the agent fails iteration 2 while the marker is absent; present means "no failure"
    (project.parent / "fail-once").unlink(missing_ok=True)


def never_fail(project: Path) -> None:
    (project.parent / "fail-once").write_text("no failure asked")


def state_of(project: Path, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (project / ".claude" / "pipeline-runs" / name / "state.json").read_text()
    )
    return data


HOW = ["flag", "stage-key", "pipeline-key", "python-api"]


@pytest.mark.parametrize("how", HOW)
def test_the_agents_work_in_the_worktree_on_the_sessions_branch(
    how: str, project: Path, agent: Path, cli: Cli
) -> None:
    never_fail(project)
    write_work_stage(project, agent, extra="worktree: true\n" if how == "stage-key" else "")
    pipeline_file = project / "wt.yaml"
    pipeline_file.write_text("worktree: true\nnodes:\n  - id: work\n    stage: work\n")
    base = init_repo(project)
    if how == "python-api":
        Session.start(
            "wt", Stage.load("work", project=project), project, backend="inline", worktree=True
        )
    else:
        what = ["--pipeline", str(pipeline_file)] if how == "pipeline-key" else ["--stage", "work"]
        flag = ["--worktree"] if how == "flag" else []
        done = cli("start", "wt", *what, *flag, "--foreground")
        assert done.returncode == 0, done.stderr
    worktree = project / ".looprunner" / "worktrees" / "wt"
    for iteration in (1, 2):
        made = json.loads((worktree / f"agent-{iteration}.json").read_text())
        assert made == {"cwd": str(worktree), "branch": "looprunner/wt", "project": str(worktree)}
        assert not (project / f"agent-{iteration}.json").exists()
    # the user's checkout is untouched: still on main, nothing new to commit
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(project, "rev-parse", "HEAD") == base
    assert ".looprunner/worktrees" not in git(project, "status", "--porcelain")
    # the context files stay in the project's run folder, where the agent was told
    run_dir = project / ".claude" / "pipeline-runs" / "wt"
    assert (run_dir / "stage-00-work" / "iterations" / "002" / "status.json").is_file()
    # what ran is what the run folder's pipeline says: a restart runs it the same way
    assert Session("wt", project).pipeline().wants_worktree
    recorded = state_of(project, "wt")
    assert recorded["status"] == "complete"
    assert recorded["worktree"] == {
        "path": str(worktree),
        "branch": "looprunner/wt",
        "base": base,
        "workdir": str(worktree),
    }


@pytest.mark.tmux
def test_status_shows_the_branch_and_how_many_commits_it_is_ahead(
    project: Path, agent: Path, cli: Cli
) -> None:
    never_fail(project)
    write_work_stage(project, agent)
    base = init_repo(project)
    started = cli("start", "wt", "--stage", "work", "--worktree")  # the engine in tmux
    assert started.returncode == 0, started.stderr
    waited = cli("wait", "wt", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    shown = cli("status", "wt")
    assert shown.returncode == 0, shown.stderr
    assert f"branch looprunner/wt, 2 commit(s) ahead of {base[:12]}" in shown.stdout
    data = json.loads(cli("--json", "status", "wt").stdout)
    assert data["worktree"] == {
        "path": str(project / ".looprunner" / "worktrees" / "wt"),
        "branch": "looprunner/wt",
        "base": base,
        "workdir": str(project / ".looprunner" / "worktrees" / "wt"),
        "present": True,
        "ahead": 2,
        "changes": 0,
    }


def test_a_project_outside_any_repository_is_refused_and_nothing_is_written(
    project: Path, agent: Path, cli: Cli
) -> None:
    write_work_stage(project, agent)
    before = tree(project)
    done = cli("start", "wt", "--stage", "work", "--worktree", "--foreground")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert f"project {project} is not in a git repository" in done.stderr
    assert tree(project) == before
    assert not (project / ".claude").exists()


def test_a_branch_checked_out_elsewhere_is_refused(
    project: Path, agent: Path, cli: Cli, tmp_path: Path
) -> None:
    write_work_stage(project, agent)
    init_repo(project)
    elsewhere = tmp_path / "elsewhere"
    git(project, "worktree", "add", "-q", "-b", "looprunner/wt", str(elsewhere))
    done = cli("start", "wt", "--stage", "work", "--worktree")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert f"project {project}" in done.stderr
    assert f"branch looprunner/wt is checked out in {elsewhere}" in done.stderr
    assert not (project / ".looprunner" / "worktrees").exists()
    assert not (project / ".claude" / "pipeline-runs" / "wt").exists()


def test_without_git_the_error_says_so(
    project: Path, agent: Path, cli: Cli, tmp_path: Path
) -> None:
    write_work_stage(project, agent)
    init_repo(project)
    empty = tmp_path / "no-programs"
    empty.mkdir()
    done = cli("start", "wt", "--stage", "work", "--worktree", env={"PATH": str(empty)})
    assert done.returncode == 2
    assert "git is not installed" in done.stderr
    assert not (project / ".claude" / "pipeline-runs" / "wt").exists()


def test_dry_run_shows_the_worktree_it_would_create_and_creates_nothing(
    project: Path, agent: Path, cli: Cli
) -> None:
    write_work_stage(project, agent)
    base = init_repo(project)
    worktree = project / ".looprunner" / "worktrees" / "wt"
    shown = cli("dry-run", "--stage", "work", "--worktree", "--name", "wt")
    assert shown.returncode == 0, shown.stderr
    assert f"worktree: {worktree}: new branch looprunner/wt from HEAD ({base[:12]})" in shown.stdout
    data = json.loads(
        cli("--json", "dry-run", "--stage", "work", "--worktree", "--name", "wt").stdout
    )
    assert data["worktree"]["action"] == "create"
    assert data["worktree"]["path"] == str(worktree)
    assert not worktree.parent.exists()
    assert git(project, "branch", "--list", "looprunner/*") == ""


def test_a_worktree_with_uncommitted_changes_is_never_removed(
    project: Path, agent: Path, cli: Cli
) -> None:
    from looprunner.session import worktrees

    never_fail(project)
    write_work_stage(project, agent, iterations=1)
    init_repo(project)
    assert cli("start", "wt", "--stage", "work", "--worktree", "--foreground").returncode == 0
    worktree = project / ".looprunner" / "worktrees" / "wt"
    (worktree / "notes.txt").write_text("work nobody committed\n")
    session = Session("wt", project)
    kept = session.remove_worktree()
    assert kept is not None and not kept.removed
    assert "1 uncommitted change(s)" in (kept.kept_because or "")
    assert (worktree / "notes.txt").read_text() == "work nobody committed\n"
    (worktree / "notes.txt").unlink()
    removed = worktrees.remove(project, session.paths.run_dir)
    assert removed is not None and removed.removed
    assert not worktree.exists()
    # the branch, and the agent's commit on it, stay
    assert git(project, "log", "--format=%s", "-1", "looprunner/wt") == "iteration 1"


def test_start_force_reuses_a_clean_worktree_and_refuses_a_dirty_one(
    project: Path, agent: Path, cli: Cli
) -> None:
    from looprunner.session import worktrees

    never_fail(project)
    write_work_stage(project, agent, iterations=1)
    init_repo(project)
    assert cli("start", "wt", "--stage", "work", "--worktree", "--foreground").returncode == 0
    worktree = project / ".looprunner" / "worktrees" / "wt"
    runs = project / ".claude" / "pipeline-runs"
    first_tip = git(project, "rev-parse", "looprunner/wt")
    (worktree / "agent-1.json").write_text("changed by hand\n")
    refused = cli("start", "wt", "--stage", "work", "--worktree", "--force", "--foreground")
    assert refused.returncode == 3
    assert f"the worktree {worktree} has 1 uncommitted change(s)" in refused.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["wt"]  # the old run was not moved
    assert (worktree / "agent-1.json").read_text() == "changed by hand\n"
    git(worktree, "checkout", "--", "agent-1.json")
    (worktree / "agent-1.json").unlink()
    git(worktree, "commit", "-q", "-am", "by hand")
    again = cli("start", "wt", "--stage", "work", "--worktree", "--force", "--foreground")
    assert again.returncode == 0, again.stderr
    kept_run = next(p for p in runs.iterdir() if p.name != "wt")
    # the new run continues the branch: its base is where the branch was
    recorded = state_of(project, "wt")["worktree"]
    assert isinstance(recorded, dict)
    assert recorded["path"] == str(worktree)
    assert recorded["base"] == git(project, "rev-parse", "looprunner/wt~1")
    assert recorded["base"] != first_tip
    # the run kept aside worked in the same worktree: removing it keeps the worktree
    kept = worktrees.remove(project, kept_run)
    assert kept is not None and not kept.removed
    assert kept.kept_because == "the run wt works in it"
    assert worktree.is_dir()


def test_resume_works_in_the_same_worktree_and_makes_it_again_if_it_was_removed(
    project: Path, agent: Path, cli: Cli
) -> None:
    fail_once(project)
    write_work_stage(project, agent)
    base = init_repo(project)
    failed = cli("start", "wt", "--stage", "work", "--worktree", "--foreground")
    assert failed.returncode == 1
    assert state_of(project, "wt")["status"] == "failed"
    worktree = project / ".looprunner" / "worktrees" / "wt"
    git(project, "worktree", "remove", str(worktree))  # clean: iteration 1 committed
    resumed = cli("resume", "wt", "--foreground")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((worktree / "agent-2.json").read_text())["branch"] == "looprunner/wt"
    data = json.loads(cli("--json", "status", "wt").stdout)
    assert (data["status"], data["worktree"]["base"], data["worktree"]["ahead"]) == (
        "complete",
        base,
        2,
    )


def test_a_pipeline_built_in_python_runs_in_a_worktree_when_it_says_so(
    project: Path, agent: Path
) -> None:
    never_fail(project)
    write_work_stage(project, agent, iterations=1)
    init_repo(project)
    stage = Stage.load("work", project=project)
    pipeline = Pipeline.loop(stage)
    asked = Pipeline(name=pipeline.name, nodes=pipeline.nodes, kind="loop", worktree=True)
    session = Session.start("wt", asked, project, backend="inline")
    status = session.worktree()
    assert status is not None
    assert (status.branch, status.ahead, status.present) == ("looprunner/wt", 1, True)
    assert (project / ".looprunner" / "worktrees" / "wt" / "agent-1.json").is_file()


def test_rm_keeps_a_worktree_with_uncommitted_changes_and_removes_a_clean_one(
    project: Path, agent: Path, cli: Cli
) -> None:
    never_fail(project)
    write_work_stage(project, agent, iterations=1)
    init_repo(project)
    for name in ("dirty", "clean"):
        assert cli("start", name, "--stage", "work", "--worktree", "--foreground").returncode == 0
    trees = project / ".looprunner" / "worktrees"
    (trees / "dirty" / "notes.txt").write_text("work nobody committed\n")

    removed = cli("--json", "rm", "dirty", "clean", "--yes")
    assert removed.returncode == 0, removed.stderr
    lines = json.loads(removed.stdout)["worktrees"]
    assert any("kept worktree" in line and "uncommitted" in line for line in lines), lines
    assert any(line.startswith("removed worktree") for line in lines), lines
    # the run folders are gone; the dirty worktree and its file stay, the clean one not
    assert cli("status", "dirty").returncode == 4
    assert (trees / "dirty" / "notes.txt").read_text() == "work nobody committed\n"
    assert not (trees / "clean").exists()
    assert git(project, "log", "--format=%s", "-1", "looprunner/clean") == "iteration 1"


def test_a_record_pointing_outside_the_worktrees_folder_is_never_removed(
    project: Path, agent: Path, cli: Cli, tmp_path: Path
) -> None:
    from looprunner.session import worktrees

    never_fail(project)
    write_work_stage(project, agent, iterations=1)
    init_repo(project)
    assert cli("start", "wt", "--stage", "work", "--worktree", "--foreground").returncode == 0
    elsewhere = tmp_path / "someone-elses-checkout"
    git(project, "worktree", "add", "-q", "-b", "theirs", str(elsewhere))
    run_dir = Session("wt", project).paths.run_dir
    record = json.loads((run_dir / "worktree.json").read_text())
    (run_dir / "worktree.json").write_text(json.dumps({**record, "path": str(elsewhere)}))
    kept = worktrees.remove(project, run_dir)
    assert kept is not None and not kept.removed
    assert "where looprunner makes worktrees" in (kept.kept_because or "")
    assert elsewhere.is_dir()
