"""Turn benchmarks/results/*.json into docs/benchmarks.md (tables) and two matplotlib plots.

Groups records by dataset, method and epsilon and shows mean ± spread (standard deviation
over seeds) of each metric next to the real-holdout floor.  Also renders the wiring check
(epsilon = 1000) with its pass/fail reading.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
COLS = [("tvd2_mean", "2-way TVD", 4), ("tvd2_max", "worst 2-way", 3),
        ("tvd3_mean", "3-way TVD", 4),
        ("cramers_v_err", "Cramér's V err", 4), ("tstr_auc", "TSTR AUC", 3),
        ("exact_match", "exact match", 4), ("dcr_ratio", "DCR ratio", 2),
        ("seconds", "fit+sample s", 1), ("peak_rss_mb", "peak MB", 0)]


def load(paths: list[Path]) -> tuple[pd.DataFrame, dict, list[dict]]:
    recs, floors, meta = [], {}, []
    for p in paths:
        r = json.loads(p.read_text())
        if not isinstance(r, dict) or "records" not in r:
            continue  # another benchmark's result file
        for rec in r["records"]:
            recs.append({**rec, "file": p.name})
        floors.update(r["floors"])
        meta.append({"file": p.name, "metrics_source": r.get("metrics_source"),
                     "skipped": r.get("skipped", {})})
    df = pd.DataFrame(recs)
    if not df.empty:
        df["seconds"] = df["fit_seconds"] + df["sample_seconds"]
    return df, floors, meta


def _fmt(v: object, digits: int) -> str:
    return "–" if v is None or pd.isna(v) else f"{float(v):.{digits}f}"


def _cell(g: pd.Series, digits: int) -> str:
    g = pd.to_numeric(g, errors="coerce")
    if g.isna().all():
        return "–"
    m = g.mean()
    return f"{m:.{digits}f}" + (f" ± {g.std():.{digits}f}" if len(g) > 1 else "")


def table(df: pd.DataFrame, floors: dict, dataset: str) -> str:
    sub = df[df.dataset == dataset]
    head = "| method | ε | seeds | " + " | ".join(c[1] for c in COLS) + " |"
    lines = [head, "|" + "---|" * (len(COLS) + 3)]
    for (method, eps), g in sub.groupby(["method", "epsilon"], sort=True):
        cells = [_cell(g[c], d) for c, _, d in COLS]
        lines.append(f"| {method} | {eps:g} | {len(g)} | " + " | ".join(cells) + " |")
    f = floors.get(dataset)
    if f:
        cells = [_fmt(f.get(c), d) for c, _, d in COLS]
        lines.append("| *real holdout (floor; AUC = TRTR)* | – | – | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wiring(df: pd.DataFrame, floors: dict) -> str:
    sub = df[df.epsilon >= 1000]
    if sub.empty:
        return "_no wiring run in the results_"
    lines = ["| dataset | method | 2-way TVD | floor | ratio | non-integer values | "
             "capital-gain = 0 (real / synthetic) |", "|---|---|---|---|---|---|---|"]
    for _, r in sub.iterrows():
        floor = floors[r["dataset"]]["tvd2_mean"]
        z = r["decoding"]["zero_share"].get("capital-gain", {})
        zs = f"{z['real']:.3f} / {z['synthetic']:.3f}" if z else "–"
        lines.append(f"| {r['dataset']} | {r['method']} | {r['tvd2_mean']:.4f} | {floor:.4f} | "
                     f"{r['tvd2_mean'] / floor:.1f}× | {r['decoding']['non_integer_values']} | "
                     f"{zs} |")
    return "\n".join(lines)


def plots(df: pd.DataFrame, floors: dict, out: Path) -> list[str]:
    names = []
    grid = df[df.epsilon < 1000]
    for ds in sorted(grid.dataset.unique()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for method, g in grid[grid.dataset == ds].groupby("method"):
            for ax, col in zip(axes, ["tvd2_mean", "tstr_auc"], strict=True):
                s = g.groupby("epsilon")[col].agg(["mean", "std"]).reset_index()
                ax.errorbar(s["epsilon"], s["mean"], yerr=s["std"].fillna(0), marker="o",
                            label=method, capsize=3)
        for ax, col, lab in zip(axes, ["tvd2_mean", "tstr_auc"], ["mean 2-way TVD",
                                "TSTR AUC"], strict=True):
            ax.axhline(floors[ds][col], color="k", ls="--", lw=1, label="real holdout")
            ax.set_xscale("log")
            ax.set_xlabel("ε")
            ax.set_ylabel(lab)
        axes[1].legend(fontsize=7)
        fig.suptitle(ds)
        fig.tight_layout()
        name = f"benchmarks-{ds}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def growth(path: Path) -> str:
    """Table of ``benchmarks/growth.py``'s runs (rows and columns against time and memory)."""
    runs = json.loads(path.read_text())["runs"]
    lines = ["| table | rows | columns | fit s | sample s | fit s per 100k rows | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['table']} | {r['rows']:,} | {r['columns']} | "
                     f"{r['fit_seconds']:.2f} | {r['sample_seconds']:.2f} | "
                     f"{r['fit_seconds'] / r['rows'] * 1e5:.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="*", type=Path)
    p.add_argument("--out", type=Path, default=DOCS / "benchmarks.md")
    a = p.parse_args(argv)
    paths = a.results or sorted(q for q in RESULTS.glob("*.json") if q.name != "quick.json")
    df, floors, meta = load(paths)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    parts = ["# Benchmarks: fhirsynth and its peers", "",
             "Generated by `benchmarks/make_report.py` from " +
             ", ".join(f"`{m['file']}`" for m in meta) + ". Metric implementation: " +
             ", ".join(sorted({str(m['metrics_source']) for m in meta})) + ".", "",
             "All methods fit on the same 80% split, sample as many rows as the 20% holdout "
             "and are scored on the same public discretisation (numeric columns in <= 16 bins "
             "of the public bounds). Cells are mean ± standard deviation over seeds. The "
             "holdout row scores real unseen data as if it were synthetic: it is the noise of "
             "an i.i.d. sample of that size, which no method drawing i.i.d. rows can be "
             "expected to beat. fhirsynth's default balanced sampling (docs/learning.md, "
             "Sampling) removes most of that noise and can score below it; the `-iid` rows "
             "are the same fits sampled i.i.d., like the peers' `-iid` rows. See "
             "benchmarks/README.md for the caveats of each peer.", ""]
    if not df.empty:
        parts += ["## Wiring check (ε = 1000)", "", wiring(df, floors), ""]
        for ds in sorted(df.dataset.unique()):
            g = df[(df.dataset == ds) & (df.epsilon < 1000)]
            if not g.empty:
                parts += [f"## {ds}", "", table(g, floors, ds), ""]
        for name in plots(df, floors, a.out.parent):
            parts += [f"![{name}]({name})", ""]
    if (RESULTS / "growth.json").exists():
        parts += ["## Growth with rows and columns (`benchmarks/growth.py`)", "",
                  "Adult bootstrapped to each size (rows drawn with replacement), fitted at "
                  "ε = 1 and sampled to the same number of rows, each size in its own process; "
                  "a generated 50-column table for columns.", "",
                  growth(RESULTS / "growth.json"), ""]
    skipped = {k: v for m in meta for k, v in m["skipped"].items()}
    if skipped:
        parts += ["## Skipped or failed runs", ""] + [f"- `{k}`: {v}" for k, v in skipped.items()]
    a.out.write_text("\n".join(parts) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
