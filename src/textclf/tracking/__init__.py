"""Everything that talks to MLflow, and nothing else does: where runs go (store.py), one run
being logged (runs.py), liveness and reaping (liveness.py), a sweep's parent and child runs
(sweep_runs.py), models (models.py, pyfunc_model.py) and the registry (registry.py), provenance
and redaction (provenance.py), reading runs back (queries.py), the metric spool (spool.py) and a
local `mlflow server` (server.py). It takes plain values (fingerprints, URIs, DataFrames), not
textclf's data objects."""
