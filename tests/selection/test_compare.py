"""Paired tests on real cross-validation folds, checked against numbers computed independently."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import special, stats

import labledger as ll
from labledger.analysis.compare import comparability_issues, compare, fold_size_ratio, fold_values
from labledger.analysis.stats import NotEnoughFoldsError, UnknownTestError, paired_test
from labledger.cli.app import main


def _t_p_by_hand(t: float, df: int) -> float:
    """Two-sided p of Student's t via the regularized incomplete beta function."""
    return float(special.betainc(df / 2, 0.5, df / (df + t * t)))


def _folds(cv_store, name: str, key: str = "accuracy") -> np.ndarray:
    view = ll.get_run(cv_store.ids[name], store=cv_store.path)
    return np.array(fold_values(view, key))


def test_nadeau_bengio_on_real_folds_matches_the_formula(cv_store):
    a, b = _folds(cv_store, "svc-rbf"), _folds(cv_store, "tree")
    view = ll.get_run(cv_store.ids["svc-rbf"], store=cv_store.path)
    n_train, n_test = view.params["cv/n_train"], view.params["cv/n_test"]
    d = a - b
    k = len(d)
    t = d.mean() / math.sqrt((1 / k + n_test / n_train) * d.var(ddof=1))
    expected = _t_p_by_hand(t, k - 1)

    result = paired_test(a.tolist(), b.tolist(), "nadeau-bengio", n_test / n_train)
    assert result.statistic == pytest.approx(t, rel=1e-12)
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert result.df == k - 1 == 4

    comparison = compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["tree"]], metric="accuracy", store=cv_store.path
    )
    pair = comparison.pairs[0]
    assert pair.comparable and pair.result is not None
    assert pair.result.p_value == pytest.approx(expected, rel=1e-9)
    assert "cv/n_test, cv/n_train" in (pair.ratio_source or "")
    # the SVM is far better than a depth-5 tree on digits
    assert pair.significant and pair.winner == "a"
    assert pair.verdict.startswith("A better than B on accuracy, p=")


def test_the_correction_makes_the_test_more_conservative_than_the_plain_t(cv_store):
    a, b = _folds(cv_store, "svc-rbf"), _folds(cv_store, "logreg")
    plain = paired_test(a.tolist(), b.tolist(), "paired-t")
    corrected = paired_test(a.tolist(), b.tolist(), "nadeau-bengio", 0.25)
    assert abs(corrected.statistic) < abs(plain.statistic)
    assert corrected.p_value > plain.p_value


def test_plain_paired_t_and_wilcoxon_match_scipy(cv_store):
    for other in ("logreg", "knn", "tree", "gnb"):
        a, b = _folds(cv_store, "svc-rbf"), _folds(cv_store, other)
        ours = paired_test(a.tolist(), b.tolist(), "paired-t")
        ref = stats.ttest_rel(a, b)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-10)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
        w = paired_test(a.tolist(), b.tolist(), "wilcoxon")
        wref = stats.wilcoxon(a, b)
        assert w.statistic == wref.statistic and w.p_value == pytest.approx(wref.pvalue)


def test_hand_computed_fixed_numbers():
    a = [0.91, 0.93, 0.92, 0.95, 0.94]
    b = [0.90, 0.90, 0.91, 0.92, 0.93]
    # d = [0.01, 0.03, 0.01, 0.03, 0.01]; mean 0.018; var(ddof=1) = 0.00012
    t_plain = 0.018 / math.sqrt(0.00012 / 5)
    t_nb = 0.018 / math.sqrt((1 / 5 + 1 / 4) * 0.00012)
    assert paired_test(a, b, "paired-t").statistic == pytest.approx(t_plain)
    assert paired_test(a, b, "paired-t").p_value == pytest.approx(_t_p_by_hand(t_plain, 4))
    nb = paired_test(a, b, "nadeau-bengio", 1 / 4)
    assert nb.statistic == pytest.approx(t_nb) and nb.p_value == pytest.approx(_t_p_by_hand(t_nb, 4))
    # all five differences positive: the exact two-sided Wilcoxon p is 2/2^5
    assert paired_test(a, b, "wilcoxon").p_value == pytest.approx(2 / 32)


def test_degenerate_inputs():
    assert paired_test([0.9, 0.8], [0.9, 0.8], "paired-t").p_value == 1.0
    assert paired_test([0.9, 0.8], [0.9, 0.8], "wilcoxon").p_value == 1.0
    assert paired_test([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "nadeau-bengio", 0.5).p_value == 0.0
    with pytest.raises(NotEnoughFoldsError):
        paired_test([0.9, float("nan")], [0.8, 0.7])
    with pytest.raises(UnknownTestError):
        paired_test([0.9, 0.8], [0.8, 0.7], "anova")


def test_the_ratio_is_measured_never_guessed_from_the_number_of_folds(store_path):
    """n_splits alone does not give the ratio (100 folds of 10×10 repeated CV are 10/90, not 1/99)."""
    with ll.start_run("ratio", store=store_path) as a:
        a.log_params({"cv/n_splits": 100, "cv/n_repeats": 10})
        a.log_folds("acc", [0.8 + 0.01 * (i % 7) for i in range(100)])
    with ll.start_run("ratio", store=store_path) as b:
        b.log_params({"cv/n_splits": 100, "cv/n_repeats": 10})
        b.log_folds("acc", [0.79 + 0.012 * (i % 5) for i in range(100)])
    va, vb = ll.get_run(a.id, store=store_path), ll.get_run(b.id, store=store_path)
    ratio, source = fold_size_ratio(va, vb, 100)
    assert math.isnan(ratio) and "not recorded" in source and "--test-train-ratio" in source

    pair = compare([a.id, b.id], metric="acc", store=store_path).pairs[0]
    assert pair.result is None and pair.winner is None and pair.posterior is None
    assert pair.verdict.startswith("no corrected p-value on acc: the fold sizes are not recorded")
    text = CliRunner().invoke(main, ["compare", a.id, b.id, "-m", "acc", "--store", str(store_path)])
    assert text.exit_code == 0 and "no corrected p-value" in text.output and "p=" not in text.output

    given = compare([a.id, b.id], metric="acc", store=store_path, test_train_ratio=10 / 90).pairs[0]
    assert given.result is not None and given.result.test_train_ratio == pytest.approx(10 / 90)
    assert "as given" in (given.ratio_source or "") and "Bouckaert" in given.description
    cli = CliRunner().invoke(
        main,
        ["compare", a.id, b.id, "-m", "acc", "--test-train-ratio", str(10 / 90), "--store", str(store_path)],
    )
    assert cli.exit_code == 0 and "as given" in cli.output
    # the plain tests need no ratio
    assert compare([a.id, b.id], metric="acc", test="paired-t", store=store_path).pairs[0].result


def test_guard_refuses_different_data_folds_and_metric_definitions(cv_store):
    ref = cv_store.ids["svc-rbf"]
    cases = {
        "svc-half-data": "not comparable: different train data",
        "svc-kfold": "not comparable: different CV folds",
        "svc-balanced": "not comparable: different metric definition for accuracy",
    }
    for name, message in cases.items():
        comparison = compare([ref, cv_store.ids[name]], metric="accuracy", store=cv_store.path)
        pair = comparison.pairs[0]
        assert not pair.comparable and not comparison.comparable
        assert pair.result is None and pair.winner is None
        assert pair.verdict.startswith(message)
        assert "NOT COMPARABLE" in comparison.render()
    same = comparability_issues(
        ll.get_run(ref, store=cv_store.path), ll.get_run(cv_store.ids["logreg"], store=cv_store.path)
    )
    assert [i for i in same if i.blocking] == []


def test_no_significant_difference_between_close_models(cv_store):
    comparison = compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["svc-rbf-c1"]], metric="accuracy", store=cv_store.path
    )
    pair = comparison.pairs[0]
    assert pair.result is not None and pair.result.p_value >= 0.05
    assert pair.verdict.startswith("no significant difference on accuracy (p=")


def test_compare_without_metric_tests_every_shared_fold_key_and_lists_params(cv_store):
    comparison = compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["knn"], cv_store.ids["gnb"]], store=cv_store.path
    )
    assert {p.metric for p in comparison.pairs} == {"accuracy", "f1_macro"}
    assert len(comparison.pairs) == 6  # every pair (A-B, A-C, B-C) on two keys
    assert [p.labels for p in comparison.pairs[:3]] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert {p.family_size for p in comparison.pairs} == {3} and comparison.correction == "holm"
    against = compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["knn"], cv_store.ids["gnb"]],
        metric="accuracy",
        reference="B",
        store=cv_store.path,
    )
    assert [p.labels for p in against.pairs] == [("B", "A"), ("B", "C")]
    assert compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["knn"]],
        metric="accuracy",
        reference=cv_store.ids["knn"],
        store=cv_store.path,
    ).pairs[0].labels == ("B", "A")
    with pytest.raises(ll.errors.LabledgerError, match="reference 'Z' is not one of the compared runs"):
        compare([cv_store.ids["svc-rbf"], cv_store.ids["knn"]], reference="Z", store=cv_store.path)
    assert "model" in comparison.differing_params and "cv/fingerprint" not in comparison.differing_params
    text = comparison.render()
    assert re.search(r"^\*\s+model\s", text, re.M)
    assert "±" in text and "(5)" in text


def test_compare_cli(cv_store):
    runner = CliRunner()
    ids = cv_store.ids
    out = runner.invoke(
        main, ["compare", ids["svc-rbf"], ids["tree"], "--metric", "accuracy", "--store", str(cv_store.path)]
    )
    assert out.exit_code == 0, out.output
    assert "A better than B on accuracy, p=" in out.output
    assert "correction: n_test/n_train = " in out.output and "the mean measured sizes" not in out.output
    out = runner.invoke(
        main,
        [
            "compare",
            ids["svc-rbf"],
            ids["tree"],
            "-m",
            "accuracy",
            "--test",
            "wilcoxon",
            "--json",
            "--store",
            str(cv_store.path),
        ],
    )
    assert out.exit_code == 0, out.output
    import json

    data = json.loads(out.output)
    a, b = _folds(cv_store, "svc-rbf"), _folds(cv_store, "tree")
    assert data["tests"][0]["p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    out = runner.invoke(main, ["compare", ids["svc-rbf"], "--store", str(cv_store.path)])
    assert out.exit_code != 0 and "at least two runs" in out.output
    out = runner.invoke(
        main, ["compare", ids["svc-rbf"], ids["tree"], "-m", "nope", "--store", str(cv_store.path)]
    )
    assert out.exit_code == 1 and "no run has metric 'nope'" in out.output
    out = runner.invoke(
        main,
        ["compare", ids["svc-rbf"], ids["svc-half-data"], "-m", "accuracy", "--store", str(cv_store.path)],
    )
    assert out.exit_code == 0 and "NOT COMPARABLE: different train data" in out.output


def test_a_metric_without_folds_is_shown_but_not_tested(cv_store):
    comparison = compare(
        [cv_store.ids["svc-rbf"], cv_store.ids["mlp"]], metric="fit_time", store=cv_store.path
    )
    assert comparison.pairs == []
    assert "no paired test" in comparison.render()
