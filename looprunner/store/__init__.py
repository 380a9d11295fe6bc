"""On-disk store: atomic files, the session lock, run state and the event log.

The only package that imports portalocker.
"""
