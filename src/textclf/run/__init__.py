"""One fine-tuning run, top to bottom: prepare (check, load data, build the model: head, freeze /
peft, tokenize: prepare.py) -> fit -> evaluate -> summarize -> log (outputs.py). A sweep's trial
differs by its hooks (hooks.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from textclf.config import Config
from textclf.data.features import decoded_samples
from textclf.data.source import Source
from textclf.model.build import trainable_names
from textclf.run import ranks
from textclf.run.hooks import TrialHooks
from textclf.run.outputs import log_model, prediction_tables, run_figures, setup_of
from textclf.run.prepare import Prepared, cache_length, prepare
from textclf.tracking import names, provenance, runs, store
from textclf.training import ddp, metrics, summary
from textclf.training.ddp import SOLO, World
from textclf.training.device import autocast_dtype, pick_device, precision_name, tf32
from textclf.training.evaluate import Evaluation, evaluate
from textclf.training.loop import FitResult, LogFn, ReportFn, fit
from textclf.training.resume import checkpoint_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    metrics: dict[str, float]
    model_uri: str | None
    history: list[dict[str, float]]  # one row per epoch
    eval_fingerprint: str = ""  # the validation and test rows it was scored on


def train_run(
    cfg: Config,
    tracking_uri: str,
    trial: TrialHooks | None = None,
    resume: str | None = None,
    source: Source | None = None,
) -> RunResult:
    """One run; `resume` continues an earlier run of the same config from its last checkpoint;
    `source` gives the data in memory instead of data.name (the Python API). With
    train.devices > 1 the run is N processes (launch.py); in each of them (a rank) this same
    function trains its share, and rank 0 alone talks to MLflow."""
    if cfg.train.devices > 1 and not ddp.launched():
        from textclf.run.launch import train_on_ranks

        done = train_on_ranks(cfg, tracking_uri, resume, source, trial)
        if "stopped" in done:  # rank 0 ended the trial: a prune, raised here as the sweep knows it
            raise (trial.killed_by[0] if trial and trial.killed_by else RuntimeError)(
                done["stopped"]
            )
        return RunResult(**done)
    world = ddp.join(pick_device(cfg.train.device).type) if ddp.launched() else SOLO
    try:
        return _train(cfg, tracking_uri, trial, resume, source, world)
    finally:
        ddp.leave()


def _train(
    cfg: Config,
    tracking_uri: str,
    trial: TrialHooks | None,
    resume: str | None,
    source: Source | None,
    world: World,
) -> RunResult:
    start = time.perf_counter()
    # all that can reject the input, before the MLflow run exists
    ready = prepare(cfg, resume, source, world)
    if not world.main:
        return follow_main(cfg, ready, resume, world)
    store.connect(tracking_uri, cfg.tracking.experiment, cfg.tracking.journal_dir)
    with open_run(cfg, ready, trial, resume) as active:
        ranks.announce(world, active.run_id)  # the other ranks, and the launcher, learn its id
        start_run(cfg, ready, trial, resume, active)
        fit_start = time.perf_counter()
        fitted = fit_model(cfg, ready, active, trial, resume, world)
        val, test, probe = evaluate_model(cfg, ready, fitted, world)
        final = summary.final_metrics(
            setup_of(cfg, ready), fitted, val, test, probe
        ) | active.drain(cfg.tracking.outage_wait_s)
        # data, model, tokens and run setup, then the first optimizer step
        final["time_to_first_step_s"] = fit_start - start + fitted.first_step_s
        # before the model: registering it compares these rows with the champion's
        active.log_predictions(*prediction_tables(ready.splits, {"val": val, "test": test}))
        model_uri = log_model(cfg, ready, final, trial)
        final["total_time_s"] = time.perf_counter() - start
        confusion = metrics.confusion(test.labels, test.predictions, ready.splits.label_names)
        active.log_results(final, confusion, run_figures(cfg, fitted, confusion))
    return RunResult(active.run_id, final, model_uri, fitted.history, ready.splits.eval_fingerprint)


def open_run(cfg: Config, ready: Prepared, trial: TrialHooks | None, resume: str | None):
    """The MLflow run (tracking/runs.py), with its tags, name, params, inputs and config."""
    splits = ready.splits
    tags = (
        provenance.run_tags(splits.fingerprint, splits.eval_fingerprint, splits.uri, ready.device)
        | {provenance.MONITOR: cfg.train.monitor}
        | {provenance.PRECISION: precision_name(autocast_dtype(cfg.train.precision, ready.device))}
        | (trial.tags if trial else {})
    )
    name = cfg.tracking.run_name or (trial and trial.name) or names.run_name(cfg)
    return runs.run(
        cfg.tracking,
        tags,
        trial.parent_run_id if trial else None,
        trial.killed_by if trial else (),
        resume,
        name=name,
        unique=cfg.tracking.run_name is None,
    )


def start_run(
    cfg: Config, ready: Prepared, trial: TrialHooks | None, resume: str | None, active
) -> None:
    """A new run's params (the config and what the data and model turned out to be), inputs, config
    file and trainable tensors; a trial learns its run id."""
    if trial and trial.on_start:
        trial.on_start(active.run_id)
    if not resume:  # a resumed run has its params, inputs and config already
        splits = ready.splits
        counts, tags = summary.derived_values(
            {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
            splits.label_names,
            splits.dropped,
            cfg.train.effective_batch_size(),
            getattr(ready.model.config, "_attn_implementation", None),
        )
        active.log_setup(
            cfg,
            splits.frames(),
            splits.uri,
            trial.params if trial else {},
            splits.split_fingerprints(),
        )
        active.log_derived(counts, tags)
        active.log_trainable(trainable_names(ready.model))
        active.log_samples(
            decoded_samples(ready.loaders.train, ready.backbone.tokenizer, splits.label_names)
        )


def fit_model(
    cfg: Config,
    ready: Prepared,
    active,
    trial: TrialHooks | None,
    resume: str | None,
    world: World = SOLO,
) -> FitResult:
    """training/loop.py's fit, logging each epoch into the run; a diverged run says why it ended."""
    if ready.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ready.device)
    report = trial.report if trial else None
    fitted = fit_rank(cfg, ready, active.run_id, resume, world, active.log_epoch, report)
    active.log_steps("learning_rate_step", fitted.learning_rates)
    if fitted.diverged:  # ended at the best earlier epoch: the run stands, and says why it stopped
        log.warning("training diverged: %s", fitted.diverged)
        active.tag({"textclf.diverged": fitted.diverged})
    return fitted


def fit_rank(
    cfg: Config,
    ready: Prepared,
    run_id: str,
    resume: str | None,
    world: World,
    log: LogFn = lambda metrics, epoch: None,
    report: ReportFn | None = None,
) -> FitResult:
    """This rank's fit (training/loop.py) into run `run_id`'s checkpoints; rank 0 alone logs and
    reports, and makes the checkpoint directory."""
    with tf32(ready.device):
        return fit(
            ready.model,
            ready.loaders.train,
            ready.loaders.val,
            cfg.train,
            ready.device,
            log=log,
            report=report,
            train_probe=ready.loaders.train_probe,
            checkpoints=checkpoint_dir(cfg, run_id, resume, main=world.main),
            world=world,
        )


def evaluate_model(
    cfg: Config, ready: Prepared, fitted: FitResult, world: World = SOLO
) -> tuple[Evaluation, Evaluation, Evaluation | None]:
    """(validation, test, training probe) evaluations of the kept weights: the selected epoch's
    validation rows and probe (scored again after a resume past that epoch) and the test rows."""
    dtype, loaders = autocast_dtype(cfg.train.precision, ready.device), ready.loaders

    def score(loader):
        if loader is None:
            return None
        return evaluate(ready.model, loader, ready.device, dtype, world=world)

    with tf32(ready.device):
        return (
            fitted.best_val or score(loaders.val),
            score(loaders.test),
            fitted.best_probe or score(loaders.train_probe),
        )


def follow_main(cfg: Config, ready: Prepared, resume: str | None, world: World) -> RunResult:
    """A rank other than 0: the same fit and evaluations, in step with rank 0 (every collective
    in the same order), and nothing logged; rank 0's run id names the checkpoints."""
    run_id = ranks.announce(world, None)
    fitted = fit_rank(cfg, ready, run_id, resume, world)
    evaluate_model(cfg, ready, fitted, world)
    return RunResult(run_id, {}, None, fitted.history, ready.splits.eval_fingerprint)


__all__ = ["Prepared", "RunResult", "TrialHooks", "cache_length", "prepare", "train_run"]
