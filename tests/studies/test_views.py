"""studies/views.py: Optuna's own figures of a study for the report, and the study behind a
sweep."""

from __future__ import annotations

import optuna
import pytest

from textclf.errors import InputError
from textclf.studies import views


def test_optuna_views_need_two_complete_trials_that_vary_a_parameter():
    study = optuna.create_study(direction="maximize")
    distribution = {
        "train.learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True)
    }
    study.add_trial(
        optuna.trial.create_trial(
            params={"train.learning_rate": 1e-4}, distributions=distribution, value=0.8
        )
    )
    figures, notes = views.optuna_views(study)
    assert figures == [] and notes[0].startswith("skipped Optuna importances")
    for lr, value in ((3e-4, 0.85), (1e-5, 0.7)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"train.learning_rate": lr}, distributions=distribution, value=value
            )
        )
    figures, notes = views.optuna_views(study)
    assert [name for name, _ in figures] == [
        "param_importances",
        "parallel_coordinate",
    ] and notes == []


def test_no_study_gives_a_note_not_a_figure():
    assert views.optuna_views(None) == ([], [views.NO_STUDY])


def test_a_study_is_opened_only_where_its_storage_can_be_read(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert views.load_study_of(None, url) is None  # not a sweep
    assert views.load_study_of("s", "postgresql://u:<redacted>@h/db") is None  # a redacted URL
    optuna.create_study(study_name="s", storage=url)
    assert views.load_study_of("s", url).study_name == "s"
    with pytest.raises(InputError, match=r"cannot open study 'missing'.*pass --storage"):
        views.load_study_of("missing", url)
