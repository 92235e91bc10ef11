"""Screens of the cockpit, each with its stylesheet beside it."""
