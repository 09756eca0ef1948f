"""follows= chains runs; the journal reads them as hypotheses, results, verdicts and notes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import labledger as ll
from labledger.analysis.plots_predictions import calibration_points
from labledger.cli import main
from labledger.errors import RunNotFoundError


def _experiment():
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    features = pd.DataFrame({"size": np.where(X_te[:, 0] > np.median(X_te[:, 0]), "large", "small")})

    def track(name, model, hypothesis, follows=None, note=None):
        with ll.start_run("cancer", name=name, hypothesis=hypothesis, follows=follows) as run:
            run.log_folds("accuracy", cross_val_score(model, X_tr, y_tr, cv=cv), cv=cv, X=X_tr, y=y_tr)
            model.fit(X_tr, y_tr)
            run.log_predictions(y_te, model.predict(X_te), proba=model.predict_proba(X_te), features=features)
            if note:
                run.note(note)
        return run

    stump = track("stump", DecisionTreeClassifier(max_depth=1, random_state=0), "a single split is enough")
    logreg = track(
        "logreg",
        make_pipeline(StandardScaler(), LogisticRegression()),
        "a linear model on all features beats the stump",
        follows=stump,
        note="error analysis of stump: large tumours are its weak slice",
    )
    deeper = track(
        "tree-4",
        DecisionTreeClassifier(max_depth=4, random_state=0),
        "a deeper tree closes the gap",
        follows=stump.id,
    )
    return stump, logreg, deeper


def test_the_journal_chains_runs_by_follows_with_verdicts_and_notes():
    stump, logreg, _ = _experiment()
    assert ll.get_run(logreg.id).lineage["follows"] == {
        "run": stump.id,
        "experiment": "cancer",
        "name": "stump",
    }
    j = ll.journal("cancer")
    assert j.metric == "accuracy"
    assert [e.run.name for e in j.entries] == ["stump", "logreg", "tree-4"]
    assert [e.depth for e in j.entries] == [0, 1, 1]
    first, second, _ = j.entries
    assert [r.name for r in first.led_to] == ["logreg", "tree-4"]
    assert second.follows == "stump" and second.verdict.startswith("against the run it follows, stump: ")
    # the fold verdict is compare's own, with the run names in place of A and B
    pair = ll.compare([stump.id, logreg.id], metric="accuracy").pairs[0]
    named = re.sub(r"\bB\b", "logreg", re.sub(r"\bA\b", "stump", pair.verdict))
    assert named in second.verdict
    assert "McNemar" in second.verdict and "stump" in second.verdict
    assert second.notes[0]["text"] == "error analysis of stump: large tumours are its weak slice"
    text = j.render()
    assert "hypothesis: a linear model on all features beats the stump" in text
    assert "led to:     logreg — a linear model on all features beats the stump" in text
    markdown = j.to_markdown()
    assert markdown.startswith("# cancer: what we tried, what worked, and why")
    assert "- **Follows:** stump" in markdown and "### 2. logreg (finished)" in markdown


def test_the_journal_command_prints_and_writes_markdown(tmp_path):
    _experiment()
    runner = CliRunner()
    out = runner.invoke(main, ["journal", "cancer"])
    assert out.exit_code == 0 and "the hypothesis journal" in out.output and "follows:    stump" in out.output
    written = runner.invoke(main, ["journal", "cancer", "--markdown", str(tmp_path / "review.md")])
    assert written.exit_code == 0 and (tmp_path / "review.md").read_text().startswith("# cancer:")
    missing = runner.invoke(main, ["journal", "no-such-experiment"])
    assert missing.exit_code == 1 and "experiment 'no-such-experiment' has no runs" in missing.output


def test_follows_must_name_an_existing_run():
    with pytest.raises(RunNotFoundError):
        ll.start_run("cancer", follows="no-such/run")


def test_charts_of_stored_predictions(tmp_path):
    stump, logreg, _ = _experiment()
    runner = CliRunner()
    for args, name in (
        (["--confusion"], "confusion.png"),
        (["--calibration"], "reliability.svg"),
        (["--slices", "size"], "slices.html"),
    ):
        targets = [stump.id, logreg.id] if "--calibration" in args else [logreg.id]
        result = runner.invoke(main, ["plot", *targets, *args, "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 1000
    p = ll.get_predictions(logreg.id)
    points = calibration_points(p.y_true, p.proba, p.classes, bins=10)
    confidence = p.proba.max(axis=1)
    correct = p.proba.argmax(axis=1) == p.y_true
    edges = np.clip(np.digitize(confidence, np.linspace(0, 1, 11)[1:-1]), 0, 9)
    ece = sum(
        abs(correct[edges == b].mean() - confidence[edges == b].mean()) * (edges == b).sum()
        for b in set(edges)
    )
    assert points["ece"] == pytest.approx(ece / len(confidence))
    bad = runner.invoke(main, ["plot", stump.id, "--confusion", "--folds", "-o", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "choose one of" in bad.output


def test_notes_are_added_to_ended_runs_with_their_author():
    stump, logreg, _ = _experiment()
    stump.note("a finding after the end")  # the Run object, ended
    stored = ll.add_note(logreg.id, "large tumours again", author="ada")
    result = CliRunner().invoke(main, ["note", "cancer/stump", "from the command line", "--author", "bo"])
    assert result.exit_code == 0 and "noted on cancer/stump by bo" in result.output
    notes = ll.get_run(stump.id).notes
    assert [(n["text"], n["author"]) for n in notes] == [
        ("a finding after the end", stump.author),
        ("from the command line", "bo"),
    ]
    assert ll.get_run(logreg.id).notes[-1]["author"] == "ada" and stored["author"] == "ada"
    assert "from the command line" in ll.journal("cancer").render()
    # the rest of an ended run stays read-only
    with pytest.raises(ll.errors.RunFinishedError):
        stump.log_params({"late": 1})
    missing = CliRunner().invoke(main, ["note", "no-such-run", "x"])
    assert missing.exit_code == 1 and "no run matches" in missing.output


def test_labledger_follows_links_runs_an_integration_starts(monkeypatch):
    from sklearn.model_selection import GridSearchCV

    import labledger.integrations.sklearn as llsk

    stump, _, _ = _experiment()
    monkeypatch.setenv("LABLEDGER_FOLLOWS", "cancer/stump")
    X, y = load_breast_cancer(return_X_y=True)
    llsk.autolog(experiment="cancer-search", hypothesis="a tuned tree beats the stump")
    try:
        GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [2, 3]}, cv=3).fit(X, y)
    finally:
        llsk.autolog(disable=True)
    search = ll.runs("cancer-search").iloc[0]
    assert ll.get_run(search["id"]).lineage["follows"]["run"] == stump.id
    monkeypatch.setenv("LABLEDGER_FOLLOWS", "no-such/run")
    with pytest.raises(RunNotFoundError):
        ll.start_run("cancer")
