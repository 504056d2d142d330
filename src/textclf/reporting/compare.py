"""`textclf compare A B`: two classifiers scored on the same rows, compared row by row (paired): for
accuracy, F1 and per-row loss, B - A with its 95% interval and a p-value (stats/paired.py). Runs
scored on other rows are refused: a difference between them would mix the models with the rows."""
from __future__ import annotations

from textclf.errors import InputError
from textclf.stats import intervals, paired, rows
from textclf.tracking import predictions

ALPHA = 0.05


def compare(a: str, b: str, split: str = "test", level: float = 0.95) -> dict:
    """What the command prints, as a JSON-ready dict."""
    first, second = predictions.scored(a, split, "A"), predictions.scored(b, split, "B")
    if first.eval_fingerprint != second.eval_fingerprint:
        raise InputError(["A and B were scored on different rows (eval fingerprints "
                          f"{first.eval_fingerprint or '?'} and {second.eval_fingerprint or '?'}): "
                          "a paired comparison needs the same validation and test rows; compare "
                          "runs with the same data settings (data.name, seed, fractions)"])
    try:
        frame_a, frame_b = rows.paired(first.frame, second.frame)
    except ValueError as e:
        raise InputError([f"A and B: {e}"]) from None
    labels, k = frame_a.label.to_numpy(), len(frame_a.probabilities.iloc[0])
    pred_a, pred_b = frame_a.prediction.to_numpy(), frame_b.prediction.to_numpy()
    results = [paired.accuracy(labels, pred_a, pred_b, level), paired.f1(labels, pred_a, pred_b, k,
                                                                         level),
               paired.loss(rows.row_losses(frame_a), rows.row_losses(frame_b), level)]
    side = {name: {"reference": s.reference, "run_id": s.run_id, "name": s.name,
                   "intervals": intervals.score_intervals(labels, p, k, level)}
            for name, s, p in (("a", first, pred_a), ("b", second, pred_b))}
    return {**side, "split": split, "rows": int(len(labels)),
            "eval_fingerprint": first.eval_fingerprint,
            "level": level, "alpha": ALPHA, "comparisons": [r.as_dict() for r in results],
            "verdict": verdict(results, ALPHA)}


def verdict(results: list[paired.Comparison], alpha: float) -> str:
    better = {r.metric: r.better(alpha) for r in results}
    found = [f"{side.upper()} on {metric} (p = "
             f"{next(r.p_value for r in results if r.metric == metric):.3g})"
             for metric, side in better.items() if side]
    return ("better: "
            + "; ".join(found)) if found else f"no difference at the {alpha:g} level on these rows"


def as_text(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = [f"A: {a['name']} ({a['run_id'][:8]})   B: {b['name']} ({b['run_id'][:8]})",
             f"{result['split']} rows: {result['rows']} (eval fingerprint "
             f"{result['eval_fingerprint']}), paired; {result['level']:.0%} intervals; difference "
             "is B - A"]
    for c in result["comparisons"]:
        ci = {"accuracy": "accuracy", "f1": "f1"}.get(c["metric"])
        spans = [f"[{s['intervals'][ci][0]:.3f}, {s['intervals'][ci][1]:.3f}]" if ci else ""
                 for s in (a, b)]
        extra = (
            f"; {c['a_only']} rows only A right, {c['b_only']} only B"
            if c["metric"] == "accuracy"
            else ""
        )
        lines.append(f"  {c['metric']:8s} A {c['a']:.4f} {spans[0]:16s} B {c['b']:.4f} "
                     f"{spans[1]:16s} B - A {c['difference']:+.4f} [{c['low']:+.4f}, "
                     f"{c['high']:+.4f}]  p = {c['p_value']:.3g} ({c['test']}{extra})")
    lines.append(f"verdict: {result['verdict']}")
    return "\n".join(lines)
