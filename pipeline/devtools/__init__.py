"""Developer tools run by tests, CI and by hand, not by a DVC stage."""
