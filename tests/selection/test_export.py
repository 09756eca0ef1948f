"""Exports of real cross-validated runs to CSV, JSON and Parquet, read back and checked."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

import labledger as ll
from labledger.analysis.export import UnsupportedExportFormatError, export_runs
from labledger.cli.app import main


def test_csv_json_parquet_hold_params_metrics_folds_tags(cv_store, tmp_path):
    svc = ll.get_run(cv_store.ids["svc-rbf"], store=cv_store.path)
    folds = svc.folds
    acc = folds[(folds["key"] == "accuracy") & (folds["split"] == "test")]["value"].tolist()

    csv = pd.read_csv(export_runs(cv_store.experiment, tmp_path / "runs.csv", store=cv_store.path))
    assert len(csv) == len(cv_store.ids)
    row = csv.set_index("name").loc["svc-rbf"]
    assert row["params.C"] == 10.0 and row["params.model"] == "svc" and row["tags.team"] == "vision"
    assert row["folds.accuracy.mean"] == pytest.approx(svc.fold_stats[("accuracy", "test")]["mean"])
    assert row["folds.accuracy.n"] == 5
    assert json.loads(row["folds.accuracy.values"]) == pytest.approx(acc)
    assert row["metrics.fit_time.count"] == 5
    assert "folds.train/accuracy.mean" in csv.columns

    pq = pd.read_parquet(export_runs(cv_store.experiment, tmp_path / "runs.parquet", store=cv_store.path))
    prow = pq.set_index("name").loc["svc-rbf"]
    assert list(prow["folds.accuracy.values"]) == pytest.approx(acc)
    assert prow["params.C"] == 10.0 and len(pq) == len(cv_store.ids)
    assert str(pq["start_time"].dtype).startswith("datetime64")

    path = export_runs(cv_store.experiment, tmp_path / "out.data", format="json", store=cv_store.path)
    records = {r["name"]: r for r in json.loads(path.read_text())}
    rec = records["svc-rbf"]
    assert rec["params"]["C"] == 10.0 and rec["tags"] == {"team": "vision"}
    assert rec["folds"]["accuracy"]["values"] == pytest.approx(acc)
    assert rec["folds"]["accuracy"]["std"] == pytest.approx(svc.fold_stats[("accuracy", "test")]["std"])
    assert rec["metrics"]["fit_time"]["count"] == 5 and rec["datasets"][0]["role"] == "train"
    assert (
        records["svc-bad-c"]["status"] == "failed"
        and "InvalidParameterError" in records["svc-bad-c"]["error"]
    )
    assert records["mlp"]["metrics"]["train/loss"]["min"] == pytest.approx(
        ll.get_run(cv_store.ids["mlp"], store=cv_store.path).summary["train/loss"]["min"]
    )


def test_where_nan_and_bad_format(tmp_path, store_path):
    with ll.start_run("nan", store=store_path) as run:
        run.log_folds("acc", [0.5, float("nan"), 0.7])
        run.log_params({"gamma": "scale"})
    with ll.start_run("nan", store=store_path) as run:
        run.log_params({"gamma": 0.01})
    records = json.loads(export_runs("nan", tmp_path / "n.json", store=store_path).read_text())
    with_folds = next(r for r in records if r["folds"])
    assert (
        with_folds["folds"]["acc"]["values"] == [0.5, None, 0.7]
        and with_folds["folds"]["acc"]["mean"] is None
    )
    # a param that is text in one run and a number in another still goes to Parquet
    pq = pd.read_parquet(export_runs("nan", tmp_path / "n.parquet", store=store_path))
    assert set(pq["params.gamma"]) == {"0.01", '"scale"'}
    values = pq["folds.acc.values"].dropna().iloc[0]
    assert values[0] == 0.5 and math.isnan(values[1])
    only = pd.read_csv(
        export_runs("nan", tmp_path / "w.csv", where="params.gamma = 'scale'", store=store_path)
    )
    assert len(only) == 1
    with pytest.raises(UnsupportedExportFormatError):
        export_runs("nan", tmp_path / "n.xlsx", store=store_path)


def test_export_cli(cv_store, tmp_path):
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "export",
            cv_store.experiment,
            "--format",
            "parquet",
            "-o",
            str(tmp_path / "r.pq"),
            "--where",
            "status = 'finished'",
            "--store",
            str(cv_store.path),
        ],
    )
    assert out.exit_code == 0, out.output
    df = pd.read_parquet(tmp_path / "r.pq")
    assert set(df["status"]) == {"finished"} and len(df) == len(cv_store.ids) - 1
    out = runner.invoke(main, ["export", "-o", str(tmp_path / "r.txt"), "--store", str(cv_store.path)])
    assert out.exit_code == 1 and "csv, json, parquet" in out.output
