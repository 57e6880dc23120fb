"""Sweeps in the window: marking what to search, the Sweeps view, and the canvas tags."""
