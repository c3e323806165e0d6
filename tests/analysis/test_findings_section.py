"""The report's findings table shows the verdict classes (a negligible case never red), the counts per class, the
effect with its interval, the correction and the population."""

from test_verdicts import FAST, negligible_runs, synthetic_run

from nerve.analysis.meta import SEEDS
from nerve.analysis.verdicts import evaluate_findings
from nerve.report.findings_section import findings_section


def test_findings_table_shows_classes_counts_effect_interval_correction_and_population():
    page = findings_section(evaluate_findings([synthetic_run(i, plant=1.0) for i in range(5)], statistics=FAST),
                            "dev")
    assert '<span class="yes">holds</span>' in page and '<span class="na">negligible</span>' in page
    assert "Holm over" in page and SEEDS in page and "r − baseline" in page
    assert "Hartung–Knapp–Sidik–Jonkman" in page and '<span class="no">' not in page


def test_a_negligible_ablation_finding_is_grey_never_red():
    findings = [f for f in evaluate_findings(negligible_runs(6), statistics=FAST) if f["number"] == 9]
    page = findings_section(findings, "test")
    assert '<span class="na">negligible</span>' in page and 'class="no"' not in page
    assert "&lt; 1/21" in page or "< 1/21" in page
