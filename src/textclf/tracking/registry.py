"""The Model Registry: a run's model becomes a version of a registered model, and the alias `champion` moves
to a version only when it beats the current champion on the same objective, measured on the same
evaluation rows (validation, never test). Versions carry where they came from as tags."""
from __future__ import annotations

import logging

import mlflow

log = logging.getLogger(__name__)
CHAMPION = "champion"


def register(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """A new version of `name` (created if needed) for the model at `model_uri`, unless the same run's model
    is already a version of it (a rerun of the same command); returns the version."""
    client = mlflow.MlflowClient()
    run_id = tags.get("textclf.run_id")
    if run_id:
        for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            return version.version
    quiet = logging.getLogger("mlflow.tracking._model_registry")
    level, quiet.level = quiet.level, logging.WARNING
    try:
        version = mlflow.register_model(model_uri, name, tags=tags).version
    finally:
        quiet.level = level
    log.info("registered %s as version %s of %r", model_uri, version, name)
    return version


def promote(name: str, version: str) -> str:
    """Move `champion` to `version` if it beats the champion: same objective and evaluation fingerprint, a
    better value in the objective's direction. Returns what happened, in words."""
    client = mlflow.MlflowClient()
    mine = client.get_model_version(name, version).tags
    try:
        held = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        held = None
    if held is not None and held.version != version:
        theirs = held.tags
        same = all(theirs.get(k) == mine.get(k) for k in ("textclf.objective", "textclf.direction",
                                                          "textclf.eval_fingerprint"))
        if not same:
            return (f"version {version} not compared with champion version {held.version}: another objective or "
                    f"other evaluation rows; move the alias by hand if you mean it")
        sign = 1 if mine.get("textclf.direction") == "maximize" else -1
        if sign * float(mine["textclf.objective_value"]) <= sign * float(theirs["textclf.objective_value"]):
            return f"champion stays version {held.version} ({theirs['textclf.objective_value']})"
    client.set_registered_model_alias(name, CHAMPION, version)
    return f"champion is now version {version} ({mine.get('textclf.objective_value')})"
