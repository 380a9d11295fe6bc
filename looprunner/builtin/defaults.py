"""The names used when a definition or a call names none: the built-ins' own.

Kept in one small module (importing nothing) so that the engine and the session can use
the defaults without naming a built-in themselves.
"""

#: the stage type of a stage that sets no ``type:``
STAGE_TYPE = "agent"
#: the backend ``start`` uses unless told otherwise
BACKEND = "tmux"
#: the backend ``--foreground`` asks for: the engine runs in the calling process
FOREGROUND_BACKEND = "inline"
#: the stage type of a pipeline's ``parallel:`` block
PARALLEL_STAGE_TYPE = "parallel"
