"""The DVC stages: one thin entry point per stage (argument parsing, then one library call)."""
