"""Where runs execute. The local runner is the default; others implement the same interface."""
