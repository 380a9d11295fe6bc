"""A quick look at sessions: ``status`` and ``list`` from plain data, with no model built.

``looprunner status NAME`` is typed often, and most sessions are ordinary: a state file
the engine wrote, a lock its live engine holds or none at all, a built-in backend. For
those, this package reads ``state.json`` and the lock as JSON, asks the backend once
without :mod:`subprocess`, and builds the session's answer (its ``--json`` object) with
the same verdict, hints and rules as the models do — importing neither attrs nor
pathlib, :mod:`typing` nor :mod:`subprocess`, which cost a command that only looks more
than its work.

Anything out of the ordinary is declined (the functions return None) and the command
goes the models' way (:mod:`looprunner.session`), which handles every case: a state
file behind its event log or written by hand, a lock file nobody or a stranger holds, a
launch in progress, an earlier run kept aside, a parallel block, a worktree, a queue, a
plugin's backend or termination, backend options. ``tests/integration/test_glance.py``
builds sessions of every kind and checks that both ways give the same answer and text.
"""
