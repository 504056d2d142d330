"""Reports: the runs a report covers and its tables (tables.py), seed noise (noise.py), data scaling
(scaling.py), plots (plots.py), paired comparisons (compare.py), the figures every run logs
(figures.py), and the report itself (build.py). Optuna's own figures come from studies/views.py."""
