"""Budgets, retries and timeouts as files say them, and failures as the CLIs print them."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from looprunner.definitions.catalog import load_stage
from looprunner.engine.failures import classify_output
from looprunner.errors import ConfigError
from looprunner.models import DEFAULT_TIMEOUT, Budget, Retry, Spent


def write(project: Path, body: str) -> None:
    folder = project / ".looprunner" / "stages" / "w"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage.yaml").write_text(body)
    (folder / "prompt.md").write_text("go\n")


def test_stage_limits_are_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        "idle_timeout: 90\nbudget:\n  max_cost_usd: 2.5\n  max_consecutive_errors: 3\n"
        "retry:\n  attempts: 2\n  base_delay: 0.5\n",
    )
    stage = load_stage("w", project=tmp_path)
    assert stage.timeout == DEFAULT_TIMEOUT
    assert stage.idle_timeout == 90
    assert stage.budget == Budget(max_cost_usd=2.5, max_consecutive_errors=3)
    assert stage.retry == Retry(attempts=2, base_delay=0.5)


@pytest.mark.parametrize("value", ["none", "None", "null", "~"])
def test_timeout_none_turns_the_default_off(tmp_path: Path, value: str) -> None:
    write(tmp_path, f"timeout: {value}\n")
    assert load_stage("w", project=tmp_path).timeout is None


class Bad(NamedTuple):
    test_id: str
    body: str
    where: str


BAD = [
    Bad("unknown-budget-key", "budget:\n  max_dollars: 3\n", "stage.yaml:2:3"),
    Bad("zero-cost", "budget:\n  max_cost_usd: 0\n", "stage.yaml:2:17"),
    Bad("text-tokens", "budget:\n  max_tokens: lots\n", "stage.yaml:2:15"),
    Bad("no-attempts", "retry:\n  attempts: 0\n", "stage.yaml:2:13"),
    Bad("negative-idle", "idle_timeout: -5\n", "stage.yaml:1:15"),
]


@pytest.mark.parametrize("case", BAD, ids=[c.test_id for c in BAD])
def test_bad_limits_are_refused_at_their_line(tmp_path: Path, case: Bad) -> None:
    write(tmp_path, case.body)
    with pytest.raises(ConfigError) as caught:
        load_stage("w", project=tmp_path)
    assert case.where in str(caught.value)


class Printed(NamedTuple):
    test_id: str
    output: str
    expected: str


PRINTED = [
    Printed(
        "claude-429",
        'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"x"}}',
        "provider_rate_limited",
    ),
    Printed(
        "claude-limit",
        "You've hit your limit · resets 1pm (Europe/Lisbon)",
        "provider_rate_limited",
    ),
    Printed(
        "codex-429",
        "ERROR: exceeded retry limit, last status: 429 Too Many Requests, request id: abc",
        "provider_rate_limited",
    ),
    Printed(
        "claude-529",
        'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"x"}}',
        "provider_overloaded",
    ),
    Printed("claude-login", "Invalid API key · Please run /login", "provider_auth"),
    Printed(
        "claude-401",
        'API Error: 401 {"type":"error","error":{"type":"authentication_error"}}',
        "provider_auth",
    ),
    Printed("codex-401", "unexpected status 401 Unauthorized: Missing bearer", "provider_auth"),
    Printed("other", "Traceback (most recent call last):\nValueError: boom", "provider_exit"),
]


@pytest.mark.parametrize("case", PRINTED, ids=[c.test_id for c in PRINTED])
def test_failures_are_classified_from_what_the_cli_printed(case: Printed) -> None:
    assert classify_output("some earlier work\n" + case.output + "\n") == case.expected


def test_backoff_doubles_up_to_its_cap_with_jitter_below_it() -> None:
    retry = Retry(attempts=6, base_delay=10, max_delay=300)
    assert [retry.delay(n, 1.0) for n in range(1, 7)] == [10, 20, 40, 80, 160, 300]
    assert retry.delay(3, 0.0) == 20  # jitter waits between half and all of it


def test_unknown_cost_never_reaches_a_budget() -> None:
    budget = Budget(max_cost_usd=1.0, max_tokens=10)
    spent = Spent().add(None, None)
    assert spent.cost_usd is None
    assert spent.reached(budget) is None
    assert spent.add(1.0, None).reached(budget) == "budget_cost"
    assert spent.add(None, 10).reached(budget) == "budget_tokens"
