"""README, the model card and docs/results/ quote the figures the recorded evaluations hold.

The recorded ``metrics.json`` files are what ``emotrace evaluate`` wrote; these tests fail when a
model or recipe result is re-recorded and the prose or tables that quote it are not updated.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DEFAULT = RESULTS / "mobilenet_v2_distilled_aligned_fer2013"


def _metrics(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _readme_row(label: str) -> str:
    """README's results-table row whose first cell starts with ``label``."""
    rows = [
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith(f"| {label}")
    ]
    assert len(rows) == 1, f"README has {len(rows)} rows starting with {label!r}"
    return rows[0]


def test_recipe_table_in_both_readmes_is_the_recorded_one() -> None:
    printed = subprocess.run(
        [sys.executable, str(RESULTS / "record_recipe.py"), "table", str(RESULTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    rows = [line for line in printed.splitlines() if line.startswith("| `")]
    assert len(rows) == len(list(RESULTS.glob("*/run.json"))) >= 1
    for document in (ROOT / "README.md", RESULTS / "README.md"):
        text = document.read_text()
        missing = [row.split(" | ")[0] for row in rows if row not in text]
        assert not missing, f"{document.relative_to(ROOT)} lacks the recorded rows of {missing}"


@pytest.mark.parametrize(
    ("label", "metrics_file", "tta"),
    [
        ("`default` (", "metrics.json", False),
        ("`default` + flip TTA", "metrics.json", True),
        ("`default-int8`", "int8/metrics.json", False),
    ],
)
def test_readme_default_rows_quote_the_recorded_evaluation(
    label: str, metrics_file: str, tta: bool
) -> None:
    metrics = _metrics(DEFAULT / metrics_file)
    figures = metrics["tta"] if tta else metrics
    cells = [cell.strip(" *") for cell in _readme_row(label).split("|")[1:-1]]
    assert cells[2] == f"{figures['accuracy']:.1%}"
    assert cells[3] == f"{figures['macro_f1']:.3f}"
    assert cells[4] == f"{figures['weighted_f1']:.3f}"


def test_model_card_and_results_quote_the_bundled_pair() -> None:
    card = (ROOT / "docs" / "model_card.md").read_text()
    results = (RESULTS / "README.md").read_text()
    for metrics_file in ("metrics.json", "int8/metrics.json"):
        quoted = f"{_metrics(DEFAULT / metrics_file)['accuracy']:.2%}"
        assert quoted in card, f"the model card does not quote {metrics_file}'s {quoted}"
        assert quoted in results, f"docs/results/README.md does not quote {quoted}"


@pytest.mark.parametrize(
    "ablation",
    sorted(RESULTS.glob("*/ablation_*/metrics.json")),
    ids=lambda path: f"{path.parent.parent.name}/{path.parent.name}",
)
def test_model_card_ablation_table_quotes_each_recorded_ablation(ablation: Path) -> None:
    """A row of the model card quotes each recorded ablation's accuracy and flip-TTA accuracy,
    rounded once from its metrics.json (rounding a rounded figure gave 68.9% for 0.6885)."""
    metrics = _metrics(ablation)
    quoted = f"{metrics['accuracy']:.1%} (flip TTA {metrics['tta']['accuracy']:.1%})"
    rows = [
        line
        for line in (ROOT / "docs" / "model_card.md").read_text().splitlines()
        if line.startswith("| ") and quoted in line
    ]
    assert rows, f"the model card's ablation table does not quote {ablation.parent.name}: {quoted}"
    history = ablation.parent / "history.csv"
    if history.is_file():
        with history.open(newline="") as handle:
            minutes = sum(float(row["seconds"]) for row in csv.DictReader(handle)) / 60
        # The row's training time is the one its history.csv records, not a figure from memory.
        assert any(f", {minutes:.0f} min" in row for row in rows), (
            f"the {ablation.parent.name} row does not quote {minutes:.0f} min from its history.csv"
        )
