"""The Model Registry: a run's model becomes a version of a registered model, and the alias
`champion` moves to a version only when it beats the current champion on the same objective,
measured on the same evaluation rows (validation, never test): by a paired test on those rows
(tracking.champion_test: paired, the default) or by the objective value alone (value). Versions
carry where they came from, and the test's outcome, as tags."""

from __future__ import annotations

import logging

import mlflow

from textclf.stats import choices
from textclf.stats.intervals import bounds, with_interval
from textclf.tracking import predictions

log = logging.getLogger(__name__)
CHAMPION = "champion"
SELECTED_FROM = choices.SELECTED_FROM  # the version tag the champion test corrects by


def enter(
    model_uri: str,
    name: str,
    run_id: str,
    objective: tuple[str, str],
    value: float,
    metrics: dict[str, float] | None = None,
    extra: dict[str, str] | None = None,
    champion: tuple[str, float] | None = ("paired", 0.05),
) -> tuple[str, str]:
    """The one way a model becomes a version of `name` (`textclf train` and `textclf sweep`): tagged
    with its run, objective and value, and the run's evaluation and split fingerprints and epoch
    selection (read from the run); described by the run's final `metrics` (read from the run unless
    given: a run still in progress has not logged them yet). `champion`: (tracking.champion_test,
    tracking.champion_alpha), to move the alias when it beats the champion; None: no champion
    (several objectives). Returns (version, what happened in words)."""
    fingerprints, logged = run_facts(run_id)
    tags = {
        "textclf.run_id": run_id,
        "textclf.objective": objective[0],
        "textclf.direction": objective[1],
        "textclf.objective_value": repr(float(value)),
        **fingerprints,
        **(extra or {}),
    }
    version = register(model_uri, name, tags, logged if metrics is None else metrics)
    if champion is None:
        return version, "several objectives: no champion"
    return version, promote(name, version, *champion)


def register(model_uri: str, name: str, tags: dict[str, str], metrics: dict[str, float]) -> str:
    """A new version of `name` (created if needed) for the model at `model_uri`, unless the same
    run's model is already a version of it (a rerun of the same command); returns the version.
    `metrics`, the run's final ones, describe it (a run still in progress has not logged them
    yet)."""
    client = mlflow.MlflowClient()
    run_id = tags.get("textclf.run_id")
    if run_id:
        for known in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            return str(known.version)
    quiet = logging.getLogger("mlflow.tracking._model_registry")
    level, quiet.level = quiet.level, logging.WARNING
    try:
        version = str(mlflow.register_model(model_uri, name, tags=tags).version)
    finally:
        quiet.level = level
    said = describe(metrics, tags.get("textclf.objective", ""), run_id)
    if said:
        client.update_model_version(name, version, description=said)
    log.info("registered %s as version %s of %r", model_uri, version, name)
    return version


def describe(m: dict[str, float], objective: str, run_id: str | None) -> str:
    """The version's description: its objective and test accuracy with the run's 95% intervals."""
    keys = [k for k in dict.fromkeys((objective, "test_accuracy")) if {k, *bounds(k)} <= set(m)]
    parts = [f"{k} {with_interval(m, k, digits=4, fixed=True)}" for k in keys]
    return (
        ("; ".join(parts) + f" (95% intervals over the evaluation rows; run {run_id})")
        if parts
        else ""
    )


def run_facts(run_id: str) -> tuple[dict[str, str], dict[str, float]]:
    """A finished run's evaluation and split fingerprints and epoch selection (textclf.monitor) as
    tags for its version, and its final metrics: one read of the run."""
    run = mlflow.MlflowClient().get_run(run_id) if run_id else None
    tags, metrics = (run.data.tags, run.data.metrics) if run else ({}, {})
    return {
        k: tags[k]
        for k in ("textclf.eval_fingerprint", "textclf.split_fingerprint", "textclf.monitor")
        if k in tags
    }, dict(metrics)


def promote(name: str, version: str, test: str = "paired", alpha: float = 0.05) -> str:
    """Move `champion` to `version` if it beats the champion (stats/choices.py champion_decision:
    the same objective, rows and monitor, and better by a one-sided paired test on the validation
    rows corrected for the trials it was selected among, or by value). Returns what happened, in
    words; a paired test's outcome is tagged on `version`."""
    client = mlflow.MlflowClient()
    mine = client.get_model_version(name, version).tags
    try:
        held = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        held = None
    if held is not None and held.version != version:
        if not choices.rivals(mine, held.tags):
            return (
                f"version {version} not compared with champion version {held.version}: "
                "another objective, other evaluation rows or another train.monitor; move "
                "the alias by hand if you mean it"
            )

        def frames():
            return tuple(
                predictions.load(t.get("textclf.run_id", ""), "val") for t in (held.tags, mine)
            )

        wins, said, tested = choices.champion_decision(mine, held.tags, test, alpha, frames)
        if tested:
            client.set_model_version_tag(
                name, version, "textclf.champion_test", f"vs version {held.version}, {tested}"
            )
        if not wins:
            return f"champion stays version {held.version}: {said}"
    client.set_registered_model_alias(name, CHAMPION, version)
    return f"champion is now version {version} ({mine.get('textclf.objective_value')})"
