"""The engine: runs a session's pipeline iteration by iteration (see ``runner``)."""
