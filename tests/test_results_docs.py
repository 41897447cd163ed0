"""README, the model card and docs/results/ quote the figures the recorded evaluations hold.

The recorded ``metrics.json`` files are what ``emotrace evaluate`` wrote; these tests fail when a
model or recipe result is re-recorded and the prose or tables that quote it are not updated.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DEFAULT = RESULTS / "mobilenet_v2_distilled_aligned_fer2013"
#: The ablation runs' figures, one row each, with the commit that recorded its full output.
ABLATIONS = RESULTS / "ablations.csv"


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
        [sys.executable, str(ROOT / "scripts" / "record_recipe.py"), "table", str(RESULTS)],
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
        ("`default` (", DEFAULT / "metrics.json", False),
        ("`default` + flip TTA", DEFAULT / "metrics.json", True),
        ("`default-int8`", DEFAULT / "int8/metrics.json", False),
        ("`accurate` (", RESULTS / "accurate" / "metrics.json", False),
        (
            "the same ensemble of float members",
            RESULTS / "accurate" / "float_members" / "metrics.json",
            False,
        ),
        ("`fast` (", RESULTS / "fast" / "metrics.json", False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_readme_model_rows_quote_the_recorded_evaluation(
    label: str, metrics_file: Path, tta: bool
) -> None:
    metrics = _metrics(metrics_file)
    figures = metrics["tta"] if tta else metrics
    cells = [cell.strip(" *") for cell in _readme_row(label).split("|")[1:-1]]
    assert cells[2] == f"{figures['accuracy']:.1%}"
    assert cells[3] == f"{figures['macro_f1']:.3f}"
    assert cells[4] == f"{figures['weighted_f1']:.3f}"


def test_model_card_and_results_quote_the_bundled_models() -> None:
    card = (ROOT / "docs" / "model_card.md").read_text()
    results = (RESULTS / "README.md").read_text()
    for folder, metrics_file in (
        (DEFAULT, "metrics.json"),
        (DEFAULT, "int8/metrics.json"),
        (RESULTS / "accurate", "metrics.json"),
        (RESULTS / "accurate", "float_members/metrics.json"),
        (RESULTS / "fast", "metrics.json"),
    ):
        quoted = f"{_metrics(folder / metrics_file)['accuracy']:.2%}"
        where = f"{folder.name}/{metrics_file}"
        assert quoted in card, f"the model card does not quote {where}'s {quoted}"
        assert quoted in results, f"docs/results/README.md does not quote {where}'s {quoted}"


def _ablations() -> list[dict[str, str]]:
    with ABLATIONS.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("ablation", _ablations(), ids=lambda row: row["folder"].split("/")[-1])
def test_model_card_ablation_table_quotes_each_recorded_ablation(ablation: dict[str, str]) -> None:
    """A row of the model card quotes each recorded ablation's accuracy and flip-TTA accuracy,
    rounded once from its recorded figure (rounding a rounded figure gave 68.9% for 0.6885), its
    training time and the commit that holds its full output."""
    accuracy, tta = float(ablation["accuracy"]), float(ablation["tta_accuracy"])
    quoted = f"{accuracy:.1%} (flip TTA {tta:.1%})"
    rows = [
        line
        for line in (ROOT / "docs" / "model_card.md").read_text().splitlines()
        if line.startswith("| ") and quoted in line
    ]
    assert rows, f"the model card's ablation table does not quote {ablation['lever']}: {quoted}"
    minutes = float(ablation["training_minutes"])
    assert any(f", {minutes:.0f} min" in row for row in rows), (
        f"the {ablation['lever']} row does not quote {minutes:.0f} min"
    )
    assert any(row.endswith(f" {ablation['commit']} |") for row in rows), (
        f"the {ablation['lever']} row does not name commit {ablation['commit']}"
    )


def test_ablation_figures_are_the_recorded_ones_where_git_has_them() -> None:
    """Each row of ablations.csv is what its commit's metrics.json and history.csv hold (checked
    where the commit is in this clone; a shallow one may lack it)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    checked = 0
    for row in _ablations():
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{row['commit']}:{row['folder']}/metrics.json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if shown.returncode != 0:
            continue
        metrics = json.loads(shown.stdout)
        assert float(row["accuracy"]) == metrics["accuracy"], row["lever"]
        assert float(row["tta_accuracy"]) == metrics["tta"]["accuracy"], row["lever"]
        history = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{row['commit']}:{row['folder']}/history.csv"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
        seconds = sum(float(r["seconds"]) for r in csv.DictReader(history))
        assert round(seconds / 60, 2) == float(row["training_minutes"]), row["lever"]
        checked += 1
    if not checked:
        pytest.skip("none of the ablations' commits is in this clone")
