"""Run configuration: a tree of frozen dataclasses with defaults; each default's comment gives its
unit or choices, and choices are Literal types (checked when a value is read, config/load.py).

YAML files and `-o section.key=value` overrides are deltas on these defaults (config/load.py).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

# model.head's choices; model/heads.py HEADS builds each (tests/model/test_heads.py checks they
# agree). model.peft wraps transformers' own classifiers only: the checkpoint's head.
HeadName = Literal["auto", "cls", "mean", "cnn", "mlp"]
PEFT_HEADS = ("auto",)


class Section:
    """A config section that can say where each of its values was set ("configs/x.yaml", "-o"),
    for error messages: the packages take the section they use, not the whole Config. The Config
    holding it tells it (Config.__post_init__); a section built alone says "config"."""

    def where(self, key: str) -> str:
        """The origin of `key` (`section.key`)."""
        origin_of = self.__dict__.get("_origin_of")
        return origin_of(key) if origin_of else "config"


@dataclass(frozen=True)
class DataConfig(Section):
    # $TEXTCLF_ASSETS/data/<name>, a local file or directory, or a Hugging Face dataset
    name: str = "imdb"
    text_column: str = "text"
    label_column: str = "label"  # TREC: coarse_label (6 classes) or fine_label (50)
    # names of integer labels 0..K-1; () = file metadata or label values
    label_names: tuple[str, ...] = ()
    train_split: str = "train"  # split (file stem) that training rows come from
    test_split: str = "test"  # split used as the test set (pool and subset pool it with train)
    # split used as the validation set with split: given (HF datasets: validation)
    val_split: str = "val"
    # provided: keep the test split, carve val from train | pool: carve val and test from all rows,
    # then train_fraction of the rest (comparable across fractions) | subset: the notebooks'
    # subset-then-split | given: the source's own train, val_split and test splits
    split: Literal["provided", "pool", "subset", "given"] = "provided"
    # stratified fraction of the training rows, (0, 1]; nested for one seed
    train_fraction: float = 1.0
    # < 1: a fraction, >= 1: rows. pool: of the whole pool; subset: of the subset; provided: of
    # train
    val_size: float = 0.1
    # pool/subset: like val_size (None = 0.1); provided: test subsample (None = all)
    test_size: float | None = None
    # tokens per text including [CLS]/[SEP]; at most the model's position limit
    max_length: int = 128
    seed: int = 42  # split seed, separate from train.seed so one split serves many runs
    # TREC: clean (the question only) | notebook: notebook 003's parser, which leaves the fine label
    # ("manner") as the first word of every text: a leak, kept only to demonstrate it (`textclf data
    # inspect` flags it)
    trec_parse: Literal["clean", "notebook"] = "clean"
    token_cache: bool = True  # token ids cached on disk ($TEXTCLF_CACHE, else ~/.cache/textclf)

    def pool_test_size(self) -> float:
        return 0.1 if self.test_size is None else self.test_size


@dataclass(frozen=True)
class ModelConfig(Section):
    name: str = "all-MiniLM-L6-v2"  # $TEXTCLF_ASSETS/models/<name>, a local directory, or a hub id
    # random: the checkpoint's architecture and tokenizer with fresh weights (training from scratch)
    init: Literal["pretrained", "random"] = "pretrained"
    # with init=random: overrides of the architecture in the checkpoint's own config names, e.g. for
    # BERT [num_hidden_layers=12, hidden_size=512, num_attention_heads=8, intermediate_size=2048];
    # YAML may use a mapping
    config: tuple[str, ...] = ()
    # what trains: presets (full, head_only, embeddings+layer0, top{k}, bottom{k}, attention_only,
    # ffn_only, layernorm_only, bias_only) and/or parameter-name patterns ('*.layer.11.*'); the head
    # always trains
    freeze: tuple[str, ...] = ("full",)
    head: HeadName = "auto"  # auto: the checkpoint's own head
    pooling: Literal["cls", "mean"] = "cls"  # the mlp head's input
    head_dropout: float = 0.1  # cls, mean, cnn and mlp heads
    mlp_hidden: int = 256
    cnn_channels: int = 128  # per kernel width
    cnn_kernels: tuple[int, ...] = (2, 3, 4)
    # prompt: soft prompt tokens; prefix: past-key-value prefixes (refused on transformers-5
    # encoders)
    peft: Literal["none", "lora", "prompt", "prefix"] = "none"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    prefix_length: int = 20  # virtual tokens for prompt / prefix tuning
    save_base: bool = True  # peft: false saves only the adapter and the base model's location
    # transformers' Hub kernels: layers swapped at load for kernels fetched from the Hub (5.25
    # turned them on by default). Off: the model's own torch code, the same numerics and speed
    # whatever the release; saved models always reload with them off
    hub_kernels: bool = False


@dataclass(frozen=True)
class TrainConfig(Section):
    epochs: int = 3  # upper bound; early stopping may end sooner
    batch_size: int = 16  # sequences per forward pass (micro-batch)
    grad_accum_steps: int = 1  # optimizer step every N micro-batches
    eval_batch_size: int = 64
    learning_rate: float = 5e-5  # peak learning rate
    # adam: torch Adam, weight_decay as a coupled L2 term
    optimizer: Literal["adamw", "adam"] = "adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999  # notebook 003's from-scratch encoder: 0.98
    adam_eps: float = 1e-8  # notebook 003: 1e-9
    weight_decay: float = 0.01  # never applied to biases or LayerNorm weights
    # after warmup: decay to 0, none, or cosine to 0
    schedule: Literal["linear", "constant", "cosine"] = "linear"
    warmup_ratio: float = 0.1  # fraction of optimizer steps with linear warmup from 0; 0 = none
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables
    # what early stopping watches and which epoch's weights are kept: val_loss (lowest; the
    # objective is then "val accuracy at min val loss") or val_accuracy (highest, as notebook 003)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"
    min_delta: float = 0.0  # an epoch improves on the best only by more than this
    # epochs without improvement of the monitored value before stopping; 0 = never stop early
    patience: int = 2
    # auto: bf16 (or fp16) autocast on GPU; on CPU bf16 autocast where the CPU has bf16 matrix
    # instructions (AMX, AVX512-BF16), else fp32. The tag textclf.precision says what a run used
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 42  # model head init, batch order, dropout
    # DataLoader worker processes (persistent across epochs). None: 2 on a GPU, so batches are
    # collated and pinned off the main thread while the GPU computes; 0 on CPU, where workers take
    # cores from the model
    num_workers: int | None = None
    # save resumable state after every epoch (textclf train --resume RUN_ID)
    checkpoint: bool = False
    checkpoint_dir: str = "checkpoints"  # checkpoints go to <checkpoint_dir>/<MLflow run id>/
    # batches of similar lengths: 2.3x faster steps at 512, 1.3x at 256 on IMDB; accuracy within
    # seed noise (docs/benchmarks.md). false: random batches, as the course notebooks
    # (sweeps/notebooks pin it)
    group_by_length: bool = True
    # the training forward through torch.compile (evaluation stays eager), batches padded to a
    # multiple of 64 so each width compiles once; compile time is logged apart (compile_time_s). Off
    # by default: on 2 CPU cores it did not pay (docs/benchmarks.md, bench/compile); not yet
    # measured on a GPU
    compile: bool = False
    progress: bool = True  # tqdm bars on stderr
    # processes training one model together (torch.distributed: NCCL, one GPU each; gloo on CPU);
    # each takes a share of every batch: batch_size is per process (docs/scale-out.md)
    devices: int = 1

    def effective_batch_size(self) -> int:
        """Rows behind one optimizer step: per process, accumulated, over every process."""
        return self.batch_size * self.grad_accum_steps * self.devices


@dataclass(frozen=True)
class TrackingConfig(Section):
    # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir
    uri: str | None = None
    experiment: str = "textclf"
    run_name: str | None = None
    # log model/ (weights + tokenizer) as an MLflow model (in a sweep: study.keep_models)
    log_model: bool = True
    # register the model as a new version of this Model Registry name
    register_as: str | None = None
    # when the alias `champion` moves to a new version: paired (the challenger beats the champion on
    # the same validation rows by a paired test at champion_alpha: McNemar for accuracy, permutation
    # for loss), or value (any strict improvement of the objective value: noise moves it)
    champion_test: Literal["paired", "value"] = "paired"
    champion_alpha: float = 0.05
    # curves.png and confusion_matrix.png; off, matplotlib is never imported (a minimal install,
    # bench/device)
    log_figures: bool = True
    # MLflow's system metrics (CPU, memory, disk, network; GPU through NVML)
    system_metrics: bool = True
    system_metrics_interval_s: float = 10.0  # seconds between system-metric samples
    # how long to wait for an unreachable tracking server: at the start, and at the end
    outage_wait_s: float = 900.0
    # per-epoch metrics on disk until the server has them ($TEXTCLF_CACHE/journal)
    journal_dir: str | None = None
    # a RUNNING run silent for 4 heartbeats is ended FAILED by the next textclf start
    heartbeat_s: float = 30.0


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # where each key was set ("configs/x.yaml", "-o"), for error messages; not part of the config
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for part in _sections():  # each section learns where its values came from
            object.__setattr__(getattr(self, part.name), "_origin_of", self.where)

    def where(self, key: str) -> str:
        return dict(self.origins).get(key, dict(self.origins).get("", "config"))

    def to_dict(self) -> dict[str, Any]:
        return {s.name: _plain(dataclasses.asdict(getattr(self, s.name))) for s in _sections()}

    def flat(self) -> dict[str, Any]:
        """`section.key -> value`: the params every run logs."""
        return {f"{s}.{k}": v for s, d in self.to_dict().items() for k, v in d.items()}


def _sections() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Config) if f.name != "origins"]


def section_types() -> dict[str, type[Section]]:
    """Each section's name and class, in Config's order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in _sections()}


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
# values shaped like access tokens (Hugging Face, OpenAI-style, GitHub): never config, never a
# logged param
SECRET_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{20,})$"
)


def replace(cfg: Config, **changes: Any) -> Config:
    """A copy with `section.key` changes (keys as keyword names with '.' written '__')."""
    sections = {s.name: getattr(cfg, s.name) for s in _sections()}
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        sections[section] = dataclasses.replace(sections[section], **{sub: value})
    return Config(**sections, origins=cfg.origins)


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
