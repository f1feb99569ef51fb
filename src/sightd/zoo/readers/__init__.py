"""Readers of the weight formats found in the source packages: NumPy arrays out, nothing executed."""
