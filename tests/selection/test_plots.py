"""Charts rendered to real files from real runs: PNG, SVG and self-contained HTML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.analysis.plots import (
    NothingToPlotError,
    UnsupportedFormatError,
    plot_curves,
    plot_folds,
    plot_params,
)
from labledger.cli.app import main

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")

PNG = b"\x89PNG\r\n\x1a\n"


def _check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 5_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 400 and height >= 300


def _check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 50  # axes, ticks, lines


def _check_html(path, *needles):
    text = path.read_text()
    assert "<html>" in text and "Plotly.newPlot" in text
    assert len(text) > 1_000_000  # the plotly.js bundle is embedded: nothing fetched at view time
    assert re.search(r"<script[^>]*\bsrc=", text) is None  # no external script tags
    for needle in needles:
        assert needle in text, needle
    return text


def test_curves_png_svg_html(cv_store, tmp_path):
    mlp = ll.get_run(cv_store.ids["mlp"], store=cv_store.path)
    losses = mlp.metric("train/loss")["value"].tolist()
    refs = [cv_store.ids["mlp"], cv_store.ids["svc-rbf"]]
    _check_png(plot_curves(refs, ["train/loss", "fit_time"], tmp_path / "curves.png", store=cv_store.path))
    _check_svg(plot_curves(refs, ["train/loss"], tmp_path / "curves.svg", x="epoch", store=cv_store.path))
    html = _check_html(plot_curves(refs, ["train/loss"], tmp_path / "c.html", store=cv_store.path), "mlp")
    # the logged values themselves are in the page
    assert json.dumps(round(losses[-1], 6))[:6] in html
    with pytest.raises(NothingToPlotError):
        plot_curves(refs, ["nope"], tmp_path / "x.png", store=cv_store.path)
    with pytest.raises(UnsupportedFormatError):
        plot_curves(refs, ["train/loss"], tmp_path / "x.jpg", store=cv_store.path)


def test_fold_distributions(cv_store, tmp_path):
    refs = [cv_store.ids[n] for n in ("svc-rbf", "logreg", "tree", "mlp")]
    _check_png(plot_folds(refs, "accuracy", tmp_path / "folds.png", store=cv_store.path))
    _check_svg(plot_folds(refs, "accuracy", tmp_path / "folds.svg", store=cv_store.path))
    tree = ll.get_run(cv_store.ids["tree"], store=cv_store.path).folds
    value = tree[(tree["key"] == "accuracy") & (tree["split"] == "test")]["value"].iloc[0]
    _check_html(
        plot_folds(refs, "accuracy", tmp_path / "folds.html", store=cv_store.path), "tree", str(value)[:8]
    )


def test_params_scatter_and_parallel_coordinates(cv_store, tmp_path):
    _check_png(plot_params(cv_store.experiment, ["C"], "accuracy", tmp_path / "c.png", store=cv_store.path))
    _check_svg(
        plot_params(cv_store.experiment, ["model"], "accuracy", tmp_path / "m.svg", store=cv_store.path)
    )
    _check_html(
        plot_params(cv_store.experiment, ["model"], "accuracy", tmp_path / "m.html", store=cv_store.path),
        "knn",
    )
    where = "params.model = 'svc'"
    _check_png(
        plot_params(
            cv_store.experiment,
            ["C", "kernel"],
            "accuracy",
            tmp_path / "pc.png",
            where=where,
            store=cv_store.path,
        )
    )
    _check_html(
        plot_params(
            cv_store.experiment, ["C", "model"], "accuracy", tmp_path / "pc.html", store=cv_store.path
        ),
        "parcoords",
    )
    with pytest.raises(NothingToPlotError):
        plot_params(cv_store.experiment, ["nope"], "accuracy", tmp_path / "n.png", store=cv_store.path)


def test_plot_cli(cv_store, tmp_path):
    runner = CliRunner()
    store = ["--store", str(cv_store.path)]
    ids = cv_store.ids
    out = runner.invoke(
        main, ["plot", ids["mlp"], "--metric", "train/loss", "-o", str(tmp_path / "a.png"), *store]
    )
    assert out.exit_code == 0, out.output
    _check_png(tmp_path / "a.png")
    out = runner.invoke(
        main,
        [
            "plot",
            ids["svc-rbf"],
            ids["knn"],
            "--folds",
            "-m",
            "accuracy",
            "-o",
            str(tmp_path / "f.html"),
            *store,
        ],
    )
    assert out.exit_code == 0, out.output
    _check_html(tmp_path / "f.html", "knn")
    out = runner.invoke(
        main,
        [
            "plot",
            cv_store.experiment,
            "--params",
            "C",
            "-m",
            "accuracy",
            "-o",
            str(tmp_path / "p.svg"),
            *store,
        ],
    )
    assert out.exit_code == 0, out.output
    _check_svg(tmp_path / "p.svg")
    out = runner.invoke(main, ["plot", ids["mlp"], "-m", "train/loss", "-o", str(tmp_path / "a.gif"), *store])
    assert out.exit_code == 1 and "png, *.svg or *.html" in out.output
