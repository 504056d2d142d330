import json

import pandas as pd

from conftest import sentiment_frame
from textclf.config import load_config
from textclf.inspect import findings, inspect_data
from textclf.model.build import load_backbone


def tables_for(tiny_model, data, *overrides):
    cfg = load_config(
        None, [f"data.name={data}", f"model.name={tiny_model}", "data.max_length=32", *overrides]
    )
    return inspect_data(cfg, load_backbone(cfg.model, cfg.data), [4, 8, 16])


def test_counts_lengths_and_truncation(tiny_model, tiny_data):
    tables = tables_for(tiny_model, tiny_data, "data.label_names=neg,pos")
    counts = tables["labels per source split"]
    assert list(counts.columns) == ["train", "test"]  # train first
    assert counts.loc["neg", "train"] == 120 and counts.loc["total", "test"] == 80
    used = tables["splits used for training (data.split=provided)"]
    assert used.loc["total"].tolist() == [216, 24, 80]
    lengths = tables[next(t for t in tables if t.startswith("token lengths"))]
    texts = pd.read_parquet(tiny_data / "train.parquet").text
    true_lengths = texts.str.split().str.len() + 2  # one token per word, plus [CLS] and [SEP]
    assert lengths.loc["train", "max"] == true_lengths.max()
    assert lengths.loc["train", "p50"] == true_lengths.median()
    assert lengths.loc["train", "truncated@8"] == (true_lengths > 8).mean()
    assert lengths.loc["train", "truncated@16"] == 0


def test_duplicates_and_conflicts(tiny_model, tmp_path):
    train = sentiment_frame(20)
    train = pd.concat([train, train.head(3), train.head(1).assign(label=lambda f: 1 - f.label)])
    test = pd.concat([sentiment_frame(10, seed=9), train.head(2)])
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    tables = tables_for(tiny_model, tmp_path)
    within = tables["exact duplicates within a split"]
    assert (
        within.loc["train", "duplicate rows"] == 4
        and within.loc["train", "texts with conflicting labels"] == 1
    )
    assert tables["texts shared across splits"].loc["train & test", "texts in both"] >= 2
    lines = findings(tables)
    assert any("appear in both train & test" in line for line in lines)
    assert any("train texts carry two different labels" in line for line in lines)


def test_label_names_inside_the_text_are_flagged(tiny_model, tiny_data, tmp_path):
    """The raw TREC mistake: keeping `LABEL:fine question` as the text."""
    frame = sentiment_frame(40)
    frame["label"] = frame.label.map({0: "bad", 1: "good"})
    frame["text"] = frame.label + " " + frame.text  # the label name leads each text
    frame.to_csv(tmp_path / "all.csv", index=False)
    tables = tables_for(tiny_model, tmp_path / "all.csv", "data.split=pool")
    assert tables["label names found in the text"].loc["train", "LEAK"]
    assert any(line.startswith("LEAK: 100% of train texts") for line in findings(tables))
    telling = tables_for(tiny_model, tiny_data, "data.label_names=bad,good")[
        "label names found in the text"
    ]
    # "good" is in many positive texts: signal
    assert 0.2 < telling.loc["train", "own label name"] < 0.9
    assert not telling["LEAK"].any()


def test_inspect_cli_prints_tables_and_writes_json(cli, tiny_model, tiny_data, tmp_path):
    out_file = tmp_path / "inspect.json"
    code, out, err = cli(
        "data",
        "inspect",
        "--data",
        tiny_data,
        "--model",
        tiny_model,
        "--max-length",
        "8,16",
        "-o",
        "data.max_length=32",
        "--output",
        out_file,
    )
    assert code == 0, err
    assert "== token lengths" in out and "truncated@16" in out and "== findings" in out
    saved = json.loads(out_file.read_text())
    assert saved["labels per source split"]["total"]["train"] == 240


def test_inspect_cli_rejects_bad_lengths(cli, tiny_model, tiny_data):
    code, _, err = cli(
        "data", "inspect", "--data", tiny_data, "--model", tiny_model, "--max-length", "8,x"
    )
    assert code == 2 and err.strip() == "--max-length: expected comma-separated integers, got '8,x'"


def test_notebook_trec_parse_leaks_the_fine_label_and_inspect_flags_it(tiny_model, assets):
    """Notebook 003's parser on the real TREC train_2000 lines: the fine label ('manner') becomes
    the text's first word.

    The clean default keeps the question only; inspect flags the leak in the notebook parse.
    """
    from textclf.data.splits import load_source

    common = [
        "data.name=trec",
        "data.label_column=coarse_label",
        "data.train_split=train_2000",
        "data.label_names=[]",
    ]
    clean = load_source(load_config(None, common).data).splits["train_2000"]
    leaky = load_source(load_config(None, [*common, "data.trec_parse=notebook"]).data).splits[
        "train_2000"
    ]
    assert clean.text[0] == "How did serfdom develop in and then leave Russia ?"
    assert leaky.text[0] == "manner how did serfdom develop in and then leave russia ?"
    colon = clean.text.str.contains(
        ":"
    ).idxmax()  # the notebook split on every ':', dropping the rest
    assert (
        leaky.text[colon]
        == clean.fine_name[colon].split(":")[1] + " " + clean.text[colon].split(":")[0].lower()[:-1]
    )
    tables = tables_for(
        tiny_model, "trec", *common[1:], "data.trec_parse=notebook", "data.split=provided"
    )
    assert tables["other label columns leading the text"].loc["train_2000: fine_name", "LEAK"]
    assert any(
        "LEAK: 100% of train_2000 texts start with their fine_name" in line
        for line in findings(tables)
    )
    clean_tables = tables_for(tiny_model, "trec", *common[1:], "data.split=provided")
    assert not clean_tables["other label columns leading the text"]["LEAK"].any()
    assert not any(line.startswith("LEAK") for line in findings(clean_tables))


def test_notebook_trec_parse_refuses_data_without_fine_labels(tiny_data):
    import pytest

    from textclf.data.splits import load_source
    from textclf.errors import InputError

    with pytest.raises(InputError, match=r"data\.trec_parse: notebook needs TREC rows"):
        load_source(load_config(None, [f"data.name={tiny_data}", "data.trec_parse=notebook"]).data)
