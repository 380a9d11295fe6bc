"""A test kit for plugin authors (and looprunner's own tests).

Installed with looprunner as a pytest plugin (entry point ``pytest11``), it gives every
test suite these fixtures, none of them autouse:

``lr_tmux``
    A private tmux server: ``LOOPRUNNER_TMUX_SOCKET`` is set to a socket of this test
    alone, and that server (only that one) is killed afterwards.
``lr_project``
    An empty project folder, with the tmux server above selected.
``lr_stage``
    ``lr_stage(name, provider="mock", termination=..., statuses=..., outputs=...)``
    writes ``.looprunner/stages/NAME`` with mock fixtures and returns the folder.
``lr_fake_agent``
    ``lr_fake_agent(script)`` returns an argv for the ``command`` provider: a real
    program that, each iteration, writes the status ``script`` gives for that
    iteration (``{"1": {"decision": "continue"}, "default": {...}}``), or exits with
    ``{"exit": N}``, sleeps with ``{"sleep": S}``, or writes no status.
``lr_cli``
    ``lr_cli("start", "NAME", "--stage", "work")`` runs the real command line against
    the project and returns the ``CompletedProcess``.
``lr_fake_model_server``
    A started :class:`~looprunner.testing.fake_model_server.FakeModelServer`: a scripted
    model endpoint on loopback for the real ``claude`` and ``codex``.
``lr_real_clis``
    The pinned real ``claude`` and ``codex``, installed from npm into a shared cache
    (skips when ``npm`` is missing); see :mod:`looprunner.testing.real_clis`.

and :func:`wait_until`, a poll-with-deadline for conditions a test waits on, and
:func:`install_plugin` / :func:`plugin_path_env`, which install a plugin distribution
into a folder and expose it to the looprunner processes a test starts;
:func:`write_env_probe_stage` (a stage whose agent reports a hash of the secret it was
given) and :func:`iteration_summaries` check that an environment reached an agent.
"""

from looprunner.testing.kit import (
    ENV_PROBE_AGENT,
    FAKE_AGENT,
    fake_agent_argv,
    install_plugin,
    iteration_summaries,
    plugin_path_env,
    tmux_socket_path,
    wait_until,
    write_env_probe_stage,
    write_stage,
)

__all__ = [
    "ENV_PROBE_AGENT",
    "FAKE_AGENT",
    "fake_agent_argv",
    "install_plugin",
    "iteration_summaries",
    "plugin_path_env",
    "tmux_socket_path",
    "wait_until",
    "write_env_probe_stage",
    "write_stage",
]
