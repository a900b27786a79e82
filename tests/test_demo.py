"""The demo runs end to end on the real yeast data and reports sane, consistent numbers."""

from __future__ import annotations

import io
import warnings

import numpy as np
from rich.console import Console
from sklearn import metrics as skm
from typer.testing import CliRunner

from labelwatch import ScoreSketch, UndefinedMetricWarning
from labelwatch.cli import app
from labelwatch.demo import run_demo


def test_demo_report_is_consistent_with_one_pass_and_sklearn() -> None:
    out = io.StringIO()
    result = run_demo(Console(file=out, width=160), epochs=150, batch_size=64)
    text = out.getvalue()
    assert "Class1" in text and "micro" in text and "hamming loss" in text
    # the batch-merged sketch equals one pass over the whole test set
    one_pass = ScoreSketch.from_arrays(
        result.sketch.labels, result.scores, result.actuals, thresholds=(0.5,)
    )
    assert result.sketch == one_pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        macro_auc = result.sketch.roc_auc("macro")
        f1 = result.sketch.f1(0.5, "micro")
    assert macro_auc > 0.65  # a real model on real data: well above chance
    assert f1 == skm.f1_score(result.actuals, result.scores > 0.5, average="micro")
    assert result.stats.hamming_loss() == np.float64(
        skm.hamming_loss(result.actuals, result.scores > 0.5)
    )


def test_cli_demo_no_serve_finishes_and_help_lists_commands() -> None:
    runner = CliRunner()
    assert "demo" in runner.invoke(app, ["--help"]).output
    res = runner.invoke(app, ["demo", "--no-serve", "--epochs", "20"])
    assert res.exit_code == 0, res.output
    assert "Per label at threshold 0.5" in res.output
