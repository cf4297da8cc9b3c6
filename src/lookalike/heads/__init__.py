"""Trained heads on engine features that are not text: background pair head (train pairs)."""
