"""What `textclf compare` says: the primary test's verdict in words (which question it answers, the
power it had, a trade-off the secondaries show, a warning on test rows) and the table it prints."""

from __future__ import annotations

from textclf.stats import paired

HOW_TO_GET_SEEDS = (
    "for the configuration question, give several runs of each (different "
    "train.seed) as comma-separated lists: `textclf sweep SPEC --repeat-best K "
    "--seeds N` reruns the best trials, or `textclf train ... -o train.seed=43`"
)


def verdict(kind: str, comparisons: list[dict], alpha: float, split: str) -> dict:
    """The primary test's answer in words and as fields; secondaries only qualify it."""
    main = next(c for c in comparisons if c["role"] == "primary")
    better = paired.better_side(main["metric"], main["difference"], main["p_value"], alpha) or None
    text = [answer(kind, main, better, alpha, f"{main['n']} {split} rows")]
    against = [
        c["metric"]
        for c in comparisons
        if c["role"] == "secondary"
        and better
        and paired.better_side(c["metric"], c["difference"], c["p_holm"], alpha) not in ("", better)
    ]
    if against:
        text.append(
            f"secondary {', '.join(against)} point the other way (Holm-adjusted): a "
            f"trade-off; the verdict follows the primary metric, {main['metric']}"
        )
    if split == "test":
        text.append(
            "test rows: use them to report a choice made on validation rows; choosing by "
            "test scores leaves no unbiased estimate (--split val to choose)"
        )
    return {
        "kind": kind,
        "better": better,
        "metric": main["metric"],
        "p_value": main["p_value"],
        "alpha": alpha,
        "text": " ".join(text),
    }


def answer(kind: str, main: dict, better: str | None, alpha: float, rows: str) -> str:
    """The question the primary test answered, and its answer."""
    metric, p = main["metric"], f"p = {main['p_value']:.3g}"
    if kind == "models":
        what = (
            f"model {better.upper()} is better on {metric} on these {rows}"
            if better
            else f"no difference between these two trained models on {metric} on these {rows} at "
            f"{alpha:g}"
        )
        return (
            f"{what} ({p}). This compares two trained models, not their configurations: two "
            f"seeds of one configuration differ like this too; {HOW_TO_GET_SEEDS}"
        )
    what = (
        f"configuration {better.upper()} is better on {metric}"
        if better
        else f"no difference between the configurations on {metric} at {alpha:g}"
    )
    return (
        f"{what} ({p}; {main['seeds_a']} and {main['seeds_b']} seeds, {rows}). At these seeds "
        f"and rows a lead of {main['detectable']:.4f} would be found with probability 0.8 "
        f"(standard error from seeds {main['seed_se']:.4f}, from rows {main['row_se']:.4f}: "
        "more seeds shrink the first, more rows the second)"
    )


def as_text(result: dict) -> str:
    a, b = result["a"], result["b"]
    kind = result["verdict"]["kind"]
    label = (
        (lambda s: f"{s['name']} ({s['run_id'][:8]})")
        if kind == "models"
        else (lambda s: f"{s['name']}: " + ", ".join(r["run_id"][:8] for r in s["runs"]))
    )
    lines = [
        f"A: {label(a)}",
        f"B: {label(b)}",
        f"{result['split']} rows: {result['rows']} (eval fingerprint "
        f"{result['eval_fingerprint']}), paired; {result['level']:.0%} intervals; difference "
        f"is B - A; primary: {result['primary']} ({result['primary_reason']})",
    ]
    for c in result["comparisons"]:
        spans = [_span(s, c["metric"]) for s in (a, b)]
        role = "primary" if c["role"] == "primary" else f"secondary, Holm p = {c['p_holm']:.3g}"
        extra = (
            f"; {c['a_only']} rows only A right, {c['b_only']} only B"
            if c["metric"] == "accuracy" and kind == "models"
            else ""
        )
        extra += f", df {c['df']:.1f}" if kind == "configurations" else ""
        lines.append(
            f"  {c['metric']:8s} A {c['a']:.4f} {spans[0]:16s} B {c['b']:.4f} "
            f"{spans[1]:16s} B - A {c['difference']:+.4f} [{c['low']:+.4f}, "
            f"{c['high']:+.4f}]  p = {c['p_value']:.3g} ({c['test']}{extra}) [{role}]"
        )
    lines.append(f"verdict: {result['verdict']['text']}")
    return "\n".join(lines)


def _span(side: dict, metric: str) -> str:
    low, high = side.get("intervals", {}).get(metric, (None, None))
    return f"[{low:.3f}, {high:.3f}]" if low is not None else ""
