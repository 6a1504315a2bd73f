"""Domain core: stdlib-only, no I/O, no clock reads."""
