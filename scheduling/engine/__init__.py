"""Pure slot arithmetic: standard library only, no IO, no clock (``now`` is an argument)."""
