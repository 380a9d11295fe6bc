"""Rendering sessions for people: notebook tables, REPL text, live progress."""
