"""Optuna's own views of a study, for the report: the study behind a sweep, opened from its storage,
and its parameter importances and parallel coordinates as matplotlib figures. Reporting takes the
figures; only studies/ imports Optuna."""

from __future__ import annotations

import warnings

import optuna
from optuna.visualization import matplotlib as views

from textclf.errors import InputError

NO_STUDY = "skipped Optuna importances / parallel coordinates: no study storage to read"


def load_study_of(study_name: str | None, url: str | None) -> optuna.Study | None:
    """The Optuna study behind a sweep, if its storage can be opened (a redacted URL cannot)."""
    if not study_name or not url or "<redacted>" in url:
        return None
    try:
        return optuna.load_study(study_name=study_name, storage=url)
    except (KeyError, ValueError, ImportError) as e:
        raise InputError(
            [f"report: cannot open study {study_name!r} in {url} ({e}); pass --storage"]
        ) from None


def optuna_views(study: optuna.Study | None) -> tuple[list, list[str]]:
    """([(name, figure)], notes): Optuna's parameter importances and parallel coordinates, or why
    they are missing."""
    if study is None:
        return [], [NO_STUDY]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    varied = {
        k for t in complete for k in t.params if len({str(u.params.get(k)) for u in complete}) > 1
    }
    if len(study.directions) > 1 or len(complete) < 2 or not varied:
        return [], [
            "skipped Optuna importances / parallel coordinates: needs a single-objective "
            "study with >= 2 complete trials that vary a parameter"
        ]
    out, notes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
        for name, draw in (
            ("param_importances", views.plot_param_importances),
            ("parallel_coordinate", views.plot_parallel_coordinate),
        ):
            try:
                figure = draw(study).get_figure(root=True)
                if figure is None:
                    raise ValueError("optuna drew no figure")
                figure.set_size_inches(8, 4.5)
                figure.tight_layout()
                out.append((name, figure))
            except (ValueError, RuntimeError, ZeroDivisionError) as e:
                notes.append(f"skipped Optuna {name}: {e}")
    return out, notes
