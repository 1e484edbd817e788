"""Hardware drivers. Each takes its bus or pin objects as arguments and never builds them."""
