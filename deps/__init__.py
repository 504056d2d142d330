"""The project's lock (constraints.txt) and the scripts that make and check it; drift.py reads it."""
