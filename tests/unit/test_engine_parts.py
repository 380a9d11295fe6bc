"""Engine parts with no process of their own: prompts, redaction, status.json,
terminations, health and process identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner import procinfo
from looprunner.builtin.terminations import (
    FixedTermination,
    JudgmentTermination,
    QueueTermination,
)
from looprunner.engine.agent_status import StatusProblem, read_agent_status, read_history
from looprunner.engine.prompt import render, template_values, unknown_variables
from looprunner.engine.redact import Redactor
from looprunner.errors import ConfigError
from looprunner.health import derive_health
from looprunner.models import (
    AgentStatus,
    Decision,
    Health,
    JudgeSpec,
    RunState,
    RunStatus,
    StageState,
    Termination,
)
from looprunner.protocols import StageProgress
from tests.conftest import wait_until

HAVE_PROC = Path("/proc/self/stat").is_file()

# --------------------------------------------------------------------------- prompt


def values(**overrides: str | int) -> dict[str, str]:
    base: dict[str, str | int] = {
        "ctx": "/p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/context.json",
        "status": "/p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/status.json",
        "progress": "/p/.claude/pipeline-runs/auth/progress-auth.md",
        "output": "/p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/output.md",
        "iteration": 3,
        "session": "auth",
        "context": "Focus on the login flow.",
    }
    base.update(overrides)
    return template_values(**base)  # type: ignore[arg-type]


class PromptCase(NamedTuple):
    test_id: str
    template: str
    expected: str


PROMPTS = [
    PromptCase(
        "ctx",
        "Read ${CTX}",
        "Read /p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/context.json",
    ),
    PromptCase(
        "status",
        "Write ${STATUS}",
        "Write /p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/status.json",
    ),
    PromptCase(
        "progress",
        "Append to ${PROGRESS}",
        "Append to /p/.claude/pipeline-runs/auth/progress-auth.md",
    ),
    PromptCase(
        "output",
        "Write ${OUTPUT}",
        "Write /p/.claude/pipeline-runs/auth/stage-00-work/iterations/003/output.md",
    ),
    PromptCase("iteration", "Iteration ${ITERATION}", "Iteration 3"),
    PromptCase("session-name", "Session ${SESSION_NAME}", "Session auth"),
    PromptCase("context", "Notes: ${CONTEXT}", "Notes: Focus on the login flow."),
    PromptCase("legacy-session", "Session ${SESSION}", "Session auth"),
    PromptCase("legacy-index", "Index ${INDEX}", "Index 2"),
    PromptCase(
        "legacy-progress-file",
        "cat ${PROGRESS_FILE}",
        "cat /p/.claude/pipeline-runs/auth/progress-auth.md",
    ),
    PromptCase(
        "several-on-one-line",
        "${SESSION_NAME}:${ITERATION}:${INDEX}:${SESSION}",
        "auth:3:2:auth",
    ),
    PromptCase(
        "unknown-left-as-is",
        'git log ${CURRENT_BRANCH} && echo "${HOME}"',
        'git log ${CURRENT_BRANCH} && echo "${HOME}"',
    ),
    PromptCase("no-braces-left", "echo $CTX $ITERATION", "echo $CTX $ITERATION"),
    PromptCase("lower-case-left", "${ctx} ${Iteration}", "${ctx} ${Iteration}"),
    PromptCase("unclosed-left", "${ITERATION", "${ITERATION"),
    PromptCase("no-variables", "Just do it.\n", "Just do it.\n"),
]


@pytest.mark.parametrize("case", PROMPTS, ids=[c.test_id for c in PROMPTS])
def test_prompt_rendering(case: PromptCase) -> None:
    assert render(case.template, values()) == case.expected


def test_index_is_the_zero_based_iteration() -> None:
    assert render("${INDEX}/${ITERATION}", values(iteration=1)) == "0/1"
    assert render("${INDEX}/${ITERATION}", values(iteration=25)) == "24/25"


def test_a_value_containing_a_variable_is_not_expanded_again() -> None:
    rendered = render(
        "Context: ${CONTEXT} in ${SESSION_NAME}",
        values(context="use ${CTX} and ${SESSION_NAME} literally"),
    )
    assert rendered == "Context: use ${CTX} and ${SESSION_NAME} literally in auth"


def test_values_with_regex_replacement_syntax_are_inserted_verbatim() -> None:
    tricky = r"C:\new\1 \g<0> $& \\"
    assert render("[${CONTEXT}]", values(context=tricky)) == f"[{tricky}]"


def test_unknown_variables_are_reported() -> None:
    template = "${CTX} ${INDEX} ${CURRENT_BRANCH} ${HOME} ${CURRENT_BRANCH}"
    assert unknown_variables(template) == ["CURRENT_BRANCH", "HOME"]


# --------------------------------------------------------------------------- redaction

SECRETS = {
    "OPENAI_API_KEY": "sk-proj-0123456789",
    "GITHUB_TOKEN": "ghp_abcdefghijklmnop",
    "MY_CLIENT_SECRET_VALUE": "s3cr3t-client-value",
    "DB_PASSWORD": "hunter2hunter2",
}
NOT_SECRETS = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "EDITOR": "vim-is-the-editor",
    "SHORT_TOKEN": "abc123",  # too short to be treated as a secret
}


def test_secret_values_are_replaced_in_text() -> None:
    redactor = Redactor({**SECRETS, **NOT_SECRETS})
    assert redactor
    text = " ".join(f"{name}={value}" for name, value in {**SECRETS, **NOT_SECRETS}.items())
    redacted = redactor.text(text)
    for name, value in SECRETS.items():
        assert value not in redacted
        assert f"{name}=[redacted:{name}]" in redacted
    for name, value in NOT_SECRETS.items():
        assert f"{name}={value}" in redacted


def test_secret_values_are_replaced_in_nested_data() -> None:
    redactor = Redactor(SECRETS)
    key = SECRETS["OPENAI_API_KEY"]
    data = {
        "argv": ["agent", "--key", key],
        "env": {"nested": [{"deep": f"Bearer {SECRETS['GITHUB_TOKEN']}"}]},
        "pair": ("x", key),
        "count": 3,
        "ok": True,
        "none": None,
    }
    assert redactor.data(data) == {
        "argv": ["agent", "--key", "[redacted:OPENAI_API_KEY]"],
        "env": {"nested": [{"deep": "Bearer [redacted:GITHUB_TOKEN]"}]},
        "pair": ["x", "[redacted:OPENAI_API_KEY]"],
        "count": 3,
        "ok": True,
        "none": None,
    }
    assert data["argv"] == ["agent", "--key", key], "the input is not changed in place"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor({"A_TOKEN": "abcdefgh", "B_TOKEN": "abcdefgh-and-more"})
    assert (
        redactor.text("x abcdefgh-and-more y abcdefgh")
        == "x [redacted:B_TOKEN] y [redacted:A_TOKEN]"
    )


def test_secret_values_with_regex_characters_are_matched_literally() -> None:
    redactor = Redactor({"API_TOKEN": "a.b*c+d(e)"})
    assert redactor.text("a.b*c+d(e) aXbbbcd(e)") == "[redacted:API_TOKEN] aXbbbcd(e)"


def test_no_secrets_changes_nothing() -> None:
    redactor = Redactor(NOT_SECRETS)
    assert not redactor
    data = {"a": [NOT_SECRETS["EDITOR"]]}
    assert redactor.data(data) == data
    assert redactor.text("vim-is-the-editor") == "vim-is-the-editor"


# --------------------------------------------------------------------------- status.json


class StatusFileCase(NamedTuple):
    test_id: str
    content: str | None
    problem: str


BAD_STATUS_FILES = [
    StatusFileCase("missing", None, "status_missing"),
    StatusFileCase("empty", "", "status_invalid"),
    StatusFileCase("torn-json", '{"decision": "st', "status_invalid"),
    StatusFileCase("list", '["stop"]', "status_invalid"),
    StatusFileCase("string", '"stop"', "status_invalid"),
    StatusFileCase("number", "3", "status_invalid"),
    StatusFileCase("bad-decision", '{"decision": "done"}', "status_invalid"),
    StatusFileCase("no-decision", '{"reason": "x"}', "status_invalid"),
    StatusFileCase("reason-not-text", '{"decision": "stop", "reason": {}}', "status_invalid"),
]


@pytest.mark.parametrize("case", BAD_STATUS_FILES, ids=[c.test_id for c in BAD_STATUS_FILES])
def test_bad_status_files(case: StatusFileCase, tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    if case.content is not None:
        path.write_text(case.content)
    with pytest.raises(StatusProblem) as info:
        read_agent_status(path)
    assert info.value.type == case.problem
    assert str(path) in info.value.message


def test_status_file_with_invalid_utf8_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_bytes(b'{"decision": "stop", "reason": "\xff\xfe"}')
    with pytest.raises(StatusProblem) as info:
        read_agent_status(path)
    assert info.value.type == "status_invalid"


def test_good_status_file(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(
        json.dumps(
            {
                "decision": "continue",
                "reason": "more to do",
                "summary": "fixed two tests",
                "work": {"items_completed": ["t1"], "files_touched": ["a.py"]},
                "errors": [],
            }
        )
    )
    status = read_agent_status(path)
    assert status.decision is Decision.CONTINUE
    assert (status.reason, status.summary) == ("more to do", "fixed two tests")
    assert status.work.files_touched == ("a.py",)


def test_history_counts_an_unreadable_old_status_as_continue(tmp_path: Path) -> None:
    good = tmp_path / "1.json"
    good.write_text('{"decision": "stop"}')
    history = read_history([good, tmp_path / "deleted.json"])
    assert [s.decision for s in history] == [Decision.STOP, Decision.CONTINUE]


# --------------------------------------------------------------------------- terminations


def progress(*decisions: str, cap: int = 10) -> StageProgress:
    history: Sequence[AgentStatus] = [AgentStatus(decision=Decision(d)) for d in decisions]
    return StageProgress(
        completed=len(history), cap=cap, history=history, project=Path("/p"), session="auth"
    )


class FixedCase(NamedTuple):
    test_id: str
    decisions: tuple[str, ...]
    verdict: str | None


FIXED = [
    FixedCase("nothing-yet", (), None),
    FixedCase("continue", ("continue",), None),
    FixedCase("stop-first", ("stop",), "agent_stop"),
    FixedCase("stop-later", ("continue", "continue", "stop"), "agent_stop"),
    FixedCase("stop-then-continue", ("stop", "continue"), None),
]


@pytest.mark.parametrize("case", FIXED, ids=[c.test_id for c in FIXED])
def test_fixed_termination(case: FixedCase) -> None:
    termination = FixedTermination(Termination(type="fixed", iterations=5))
    termination.validate()
    assert termination.decide(progress(*case.decisions, cap=5)) == case.verdict


class JudgmentCase(NamedTuple):
    test_id: str
    spec: Termination
    decisions: tuple[str, ...]
    verdict: str | None


JUDGMENT = [
    JudgmentCase("nothing-yet", Termination(type="judgment"), (), None),
    JudgmentCase("one-stop-of-default-two", Termination(type="judgment"), ("stop",), None),
    JudgmentCase("two-stops", Termination(type="judgment"), ("stop", "stop"), "consensus"),
    JudgmentCase(
        "continue-resets-streak",
        Termination(type="judgment"),
        ("stop", "continue", "stop"),
        None,
    ),
    JudgmentCase(
        "streak-after-continue",
        Termination(type="judgment"),
        ("stop", "continue", "stop", "stop"),
        "consensus",
    ),
    JudgmentCase(
        "streak-broken-at-the-end",
        Termination(type="judgment"),
        ("stop", "stop", "continue"),
        None,
    ),
    JudgmentCase(
        "consensus-three-not-reached",
        Termination(type="judgment", consensus=3),
        ("continue", "stop", "stop"),
        None,
    ),
    JudgmentCase(
        "consensus-three-reached",
        Termination(type="judgment", consensus=3),
        ("stop", "stop", "stop"),
        "consensus",
    ),
    JudgmentCase(
        "consensus-one", Termination(type="judgment", consensus=1), ("stop",), "consensus"
    ),
    JudgmentCase(
        "min-iterations-not-reached",
        Termination(type="judgment", min_iterations=3),
        ("stop", "stop"),
        None,
    ),
    JudgmentCase(
        "min-iterations-reached",
        Termination(type="judgment", min_iterations=3),
        ("stop", "stop", "stop"),
        "consensus",
    ),
    JudgmentCase(
        "min-iterations-reached-streak-started-early",
        Termination(type="judgment", min_iterations=3, consensus=2),
        ("continue", "stop", "stop"),
        "consensus",
    ),
    JudgmentCase(
        "min-iterations-and-consensus-one",
        Termination(type="judgment", min_iterations=2, consensus=1),
        ("stop",),
        None,
    ),
]


@pytest.mark.parametrize("case", JUDGMENT, ids=[c.test_id for c in JUDGMENT])
def test_judgment_termination(case: JudgmentCase) -> None:
    termination = JudgmentTermination(case.spec)
    termination.validate()
    seen = progress(*case.decisions)
    assert termination.decide(seen) == case.verdict
    assert termination.decide(seen) == case.verdict, "deciding twice counts nothing twice"


def test_judgment_decides_from_history_alone() -> None:
    """A fresh strategy (after a resume) decides exactly as the one that saw every step."""
    decisions = ("continue", "stop", "continue", "stop", "stop")
    spec = Termination(type="judgment", min_iterations=2)
    running = JudgmentTermination(spec)
    verdicts = [running.decide(progress(*decisions[:n])) for n in range(len(decisions) + 1)]
    fresh = [
        JudgmentTermination(spec).decide(progress(*decisions[:n]))
        for n in range(len(decisions) + 1)
    ]
    assert verdicts == fresh == [None, None, None, None, None, "consensus"]


def test_a_judge_is_accepted_by_judgment_and_refused_not_ignored_elsewhere() -> None:
    judge = JudgeSpec(provider="claude", model="opus")
    JudgmentTermination(Termination(type="judgment", judge=judge)).validate()
    with pytest.raises(ConfigError, match="judge"):
        FixedTermination(Termination(type="fixed", judge=judge)).validate()
    with pytest.raises(ConfigError, match="judge"):
        QueueTermination(Termination(type="queue", queue_command=("true",), judge=judge)).validate()


def test_cap_reasons() -> None:
    assert FixedTermination.cap_reason == "iterations_complete"
    assert JudgmentTermination.cap_reason == "max_iterations"


# --------------------------------------------------------------------------- health


def run_state(
    status: RunStatus,
    *,
    backend: str = "tmux",
    pid: int | None = None,
    pid_start_time: int | None = None,
    boot_id: str | None = None,
) -> RunState:
    return RunState(
        session="auth",
        type="loop",
        pipeline="work",
        status=status,
        started_at="2024-05-01T10:00:00.000Z",
        updated_at="2024-05-01T10:00:00.000Z",
        backend=backend,
        stages=(StageState(id="work", stage="work", status=status, max_iterations=3),),
        pid=pid,
        pid_start_time=pid_start_time,
        boot_id=boot_id,
    )


class HealthCase(NamedTuple):
    test_id: str
    lock_held: bool
    status: RunStatus | None
    tmux_present: bool | None
    expected: Health
    backend: str = "tmux"
    state_unreadable: bool = False


R, P = RunStatus.RUNNING, RunStatus.PENDING
HEALTH = [
    HealthCase("running", True, R, True, Health.RUNNING),
    HealthCase("running-tmux-unreachable", True, R, None, Health.RUNNING),
    HealthCase("running-before-state-written", True, None, True, Health.RUNNING),
    HealthCase("running-inline", True, R, False, Health.RUNNING, backend="inline"),
    HealthCase("crashed-running", False, R, False, Health.CRASHED),
    HealthCase("crashed-pending", False, P, False, Health.CRASHED),
    # the inline backend always answers (it holds nothing), so tmux being down never matters
    HealthCase("crashed-inline-engine-gone", False, R, False, Health.CRASHED, "inline"),
    HealthCase("complete", False, RunStatus.COMPLETE, False, Health.COMPLETE),
    HealthCase("failed", False, RunStatus.FAILED, False, Health.FAILED),
    HealthCase("killed", False, RunStatus.KILLED, False, Health.KILLED),
    HealthCase("complete-tmux-unreachable", False, RunStatus.COMPLETE, None, Health.COMPLETE),
    HealthCase("failed-tmux-unreachable", False, RunStatus.FAILED, None, Health.FAILED),
    HealthCase("killed-tmux-unreachable", False, RunStatus.KILLED, None, Health.KILLED),
    HealthCase("orphaned-no-state", False, None, True, Health.ORPHANED),
    HealthCase("orphaned-state-running", False, R, True, Health.ORPHANED),
    HealthCase("unknown-running-tmux-unreachable", False, R, None, Health.UNKNOWN),
    HealthCase("unknown-pending-tmux-unreachable", False, P, None, Health.UNKNOWN),
    HealthCase("unknown-nothing-tmux-unreachable", False, None, None, Health.UNKNOWN),
    HealthCase("unknown-state-unreadable", False, None, False, Health.UNKNOWN, "tmux", True),
    HealthCase("not-found", False, None, False, Health.NOT_FOUND),
]


@pytest.mark.parametrize("case", HEALTH, ids=[c.test_id for c in HEALTH])
def test_health_table(case: HealthCase) -> None:
    state = None if case.status is None else run_state(case.status, backend=case.backend)
    health, detail = derive_health(
        state=state,
        lock_held=case.lock_held,
        tmux_present=case.tmux_present,
        state_unreadable=case.state_unreadable,
    )
    assert health is case.expected
    if health in (Health.CRASHED, Health.ORPHANED, Health.UNKNOWN):
        assert detail, "a health that needs explaining is explained"


def test_unknown_says_tmux_cannot_be_reached() -> None:
    _, detail = derive_health(state=run_state(R), lock_held=False, tmux_present=None)
    assert detail is not None
    assert "tmux" in detail
    assert "reach" in detail


def dead_process() -> tuple[int, int | None]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    started = procinfo.start_time(proc.pid)
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)
    return proc.pid, started


@pytest.mark.skipif(procinfo.boot_id() is None, reason="no boot id on this platform")
def test_crash_after_a_reboot_says_so() -> None:
    state = run_state(R, pid=os.getpid(), boot_id="not-" + str(procinfo.boot_id()))
    health, detail = derive_health(state=state, lock_held=False, tmux_present=False)
    assert health is Health.CRASHED
    assert detail is not None
    assert "reboot" in detail


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_crash_of_a_dead_engine_says_it_died() -> None:
    pid, started = dead_process()
    state = run_state(R, pid=pid, pid_start_time=started, boot_id=procinfo.boot_id())
    health, detail = derive_health(state=state, lock_held=False, tmux_present=False)
    assert health is Health.CRASHED
    assert detail is not None
    assert "died" in detail
    assert str(pid) in detail


# --------------------------------------------------------------------------- procinfo


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_this_process_is_alive_with_its_identity() -> None:
    me = os.getpid()
    started = procinfo.start_time(me)
    assert isinstance(started, int)
    assert procinfo.is_alive(me, started, procinfo.boot_id())
    assert procinfo.is_alive(me)


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_wrong_start_time_means_another_process() -> None:
    me = os.getpid()
    started = procinfo.start_time(me)
    assert started is not None
    assert not procinfo.is_alive(me, started + 1, procinfo.boot_id())
    assert not procinfo.is_alive(me, started - 1)


@pytest.mark.skipif(procinfo.boot_id() is None, reason="no boot id on this platform")
def test_wrong_boot_id_means_the_process_is_gone() -> None:
    me = os.getpid()
    assert not procinfo.is_alive(me, procinfo.start_time(me), "another-boot")


def test_dead_pid_is_not_alive() -> None:
    pid, started = dead_process()
    assert not procinfo.is_alive(pid, started, procinfo.boot_id())
    assert not procinfo.is_alive(pid)
    assert procinfo.start_time(pid) is None


@pytest.mark.parametrize("pid", [None, 0, -1], ids=["none", "zero", "negative"])
def test_no_pid_is_not_alive(pid: int | None) -> None:
    assert not procinfo.is_alive(pid)


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: procinfo.is_zombie(proc.pid), what="the child to exit unreaped")
        assert not procinfo.is_alive(proc.pid)
    finally:
        proc.wait(timeout=30)


@pytest.mark.skipif(not HAVE_PROC, reason="needs /proc")
def test_start_time_survives_a_command_name_with_spaces_and_parens(tmp_path: Path) -> None:
    program = tmp_path / "my agent) (x"
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n")
    program.chmod(0o755)
    proc = subprocess.Popen([str(program)], stdin=subprocess.PIPE)
    try:
        wait_until(
            lambda: (
                b"my agent) (x" in Path(f"/proc/{proc.pid}/stat").read_bytes()
                or Path(f"/proc/{proc.pid}/comm").read_text().startswith("my agent")
            ),
            what="the program to be exec'd",
        )
        started = procinfo.start_time(proc.pid)
        assert isinstance(started, int)
        assert procinfo.is_alive(proc.pid, started, procinfo.boot_id())
        assert not procinfo.is_zombie(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
