"""Reproducible studies behind the command line: the news authorship study and
the planted-partition chain."""
