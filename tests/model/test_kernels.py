"""model.hub_kernels: textclf, not the installed transformers release, decides whether
`from_pretrained` swaps layers for kernels fetched from the Hub.

transformers 5.25 turned them on by default (`use_kernels=None` -> True) and depends on the
`kernels` package; the GPU machine lacks it, so the device dry run failed to load any model
("Kernels are not available"), and on a GPU the numerics and speed would change with the release.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import transformers
from packaging.version import Version

from textclf.config import load_config
from textclf.errors import InputError
from textclf.model import build

KERNELS_BY_DEFAULT = Version(transformers.__version__) >= Version("5.25")

# A fresh interpreter, `kernels` made unimportable as on the GPU machine (bench/device/imports.py
# does the same): with Hub kernels on, transformers >= 5.25 raises "Kernels are not available" in
# from_pretrained, which is how the device dry run failed. With `kernels` importable, the loaded
# modules must not be kernelized either. (Importing transformers.modeling_utils imports `kernels`
# whenever it is installed: that alone changes nothing.)
LOAD = """
import json, sys
if sys.argv[3] == "refused":
    sys.modules["kernels"] = None
from pathlib import Path
import mlflow
from textclf.config import load_config
from textclf.model.build import build_classifier, load_backbone
from textclf.tracking import models
path, out, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[4:]
kernelized = lambda model: any(getattr(m, "use_kernels", False) for m in model.modules())
cfg = load_config(None, [f"model.name={path}", "data.max_length=32", *overrides])
backbone = load_backbone(cfg.model, cfg.data)
model = build_classifier(backbone, ("neg", "pos"), cfg.model)
# the real reload path: MLflow's transformers flavor (plain models) or textclf's saved form (others)
mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
mlflow.set_experiment("kernels")
with mlflow.start_run():
    uri = models.log_model(model, backbone.tokenizer, 32, path, True, ["a film"])
reloaded = models.load_predictor(uri).model
print(json.dumps({"built": kernelized(model), "reloaded": kernelized(reloaded)}))
"""

PLAIN = """
import sys
sys.modules["kernels"] = None
from transformers import AutoModel
try:
    AutoModel.from_pretrained(sys.argv[1])
    print("loaded")
except ValueError as e:
    print(str(e).split(".")[0])
"""


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("kernels", ["refused", "importable"])
@pytest.mark.parametrize(
    "overrides",
    [[], ["model.head=mean"], ["model.peft=lora"]],
    ids=["auto-head", "own-head", "lora"],
)
def test_default_load_never_uses_hub_kernels(tiny_model, tmp_path, overrides, kernels):
    """Every loader textclf owns (build, then the logged model's reload) keeps Hub kernels off by
    default."""
    seen = json.loads(run(LOAD, tiny_model, tmp_path, kernels, *overrides))
    assert seen == {"built": False, "reloaded": False}


@pytest.mark.skipif(
    not KERNELS_BY_DEFAULT,
    reason="before transformers 5.25 from_pretrained never loads kernels "
    "unless asked: nothing to detect",
)
def test_the_check_can_fail_plain_from_pretrained_needs_kernels(tiny_model):
    """The check above is live: transformers' own default (no use_kernels) fails where `kernels` is
    missing."""
    assert run(PLAIN, tiny_model) == "Kernels are not available"


class Refused(Exception):
    pass


def test_hub_kernels_true_is_passed_on(tiny_model, monkeypatch):
    """The opt-in reaches from_pretrained as use_kernels=True (not run for real: kernels on CPU
    would go to the Hub); the setting is part of the config, so every run logs it as the param
    model.hub_kernels."""
    seen = {}

    class Spy:
        @classmethod
        def from_pretrained(cls, location, **kwargs):
            seen.update(kwargs)
            raise Refused

    monkeypatch.setattr(build, "AutoModelForSequenceClassification", Spy)
    for value, expected in (("true", True), ("false", False)):
        cfg = load_config(
            None, [f"model.name={tiny_model}", "data.max_length=32", f"model.hub_kernels={value}"]
        )
        assert cfg.flat()["model.hub_kernels"] is expected
        with pytest.raises(Refused):
            build.build_classifier(
                build.load_backbone(cfg.model, cfg.data), ("neg", "pos"), cfg.model
            )
        assert seen["use_kernels"] is expected


def test_hub_kernels_takes_a_boolean_only():
    with pytest.raises(InputError, match=r"model\.hub_kernels"):
        load_config(None, ["model.hub_kernels=sometimes"])
