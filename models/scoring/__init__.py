"""Scoring: streamed scoring of files, folders and zip archives, batch rows and CSV."""
