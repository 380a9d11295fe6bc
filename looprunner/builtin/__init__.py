"""Built-in providers, terminations and backends, registered like any plugin's."""
