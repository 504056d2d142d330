"""Reports: the runs a report covers and its tables (tables.py), plots (plots.py), the figures every
run logs (figures.py), and the report itself (build.py)."""
