"""Reading and writing looprunner's files: the only importer of ruamel.yaml and cattrs.

Definition files are parsed with ruamel.yaml's round-trip loader, which remembers where
every key and value stands, and structured into models with one cattrs converter in
detailed-validation mode. A bad value becomes one :class:`ConfigError` that names the
file, line, column and key path: ``stage.yaml:4:15: termination.iterations: expected an
integer, got 'five'``.

The modules, split by what they convert (none imports this package, so there is no
cycle through it):

- :mod:`~looprunner.convert.yaml`: YAML with positions, ``locate`` and ``located``
- :mod:`~looprunner.convert.converter`: the cattrs converter; errors that say where
- :mod:`~looprunner.convert.stages`: ``stage.yaml`` and its prompt
- :mod:`~looprunner.convert.pipelines`: the resolved pipeline of a run directory
- :mod:`~looprunner.convert.state`, :mod:`~looprunner.convert.events`: run records
- :mod:`~looprunner.convert.status`: the agent's ``status.json``
"""

from looprunner.convert.converter import (
    config_error,
    refuse_unknown_keys,
    split_command,
    structure,
    structure_from,
    unstructure,
)
from looprunner.convert.events import event_from_dict, event_to_json
from looprunner.convert.pipelines import dump_pipeline, load_resolved_pipeline
from looprunner.convert.stages import (
    NONE_KEYS,
    STAGE_KEYS,
    check_limits,
    check_termination,
    load_stage_file,
    split_commands,
    take_none,
)
from looprunner.convert.state import state_from_json, state_to_json
from looprunner.convert.status import agent_status_from_dict
from looprunner.convert.yaml import (
    KeyPath,
    dotted,
    expect_mapping,
    locate,
    located,
    parse_yaml,
    plain_data,
    read_yaml,
)

__all__ = [
    "NONE_KEYS",
    "STAGE_KEYS",
    "KeyPath",
    "agent_status_from_dict",
    "check_limits",
    "check_termination",
    "config_error",
    "dotted",
    "dump_pipeline",
    "event_from_dict",
    "event_to_json",
    "expect_mapping",
    "load_resolved_pipeline",
    "load_stage_file",
    "locate",
    "located",
    "parse_yaml",
    "plain_data",
    "read_yaml",
    "refuse_unknown_keys",
    "split_command",
    "split_commands",
    "state_from_json",
    "state_to_json",
    "structure",
    "structure_from",
    "take_none",
    "unstructure",
]
