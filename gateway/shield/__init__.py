"""The ping shield: the first bid per caller, answered again until it expires."""
