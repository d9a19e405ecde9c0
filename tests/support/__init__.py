"""Helpers shared by test modules of every layer (nothing here is a test)."""
