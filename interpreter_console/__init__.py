"""tsunagu interpreter_console."""
