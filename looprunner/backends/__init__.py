"""Backends: where an engine process runs (tmux by default, or inline)."""
