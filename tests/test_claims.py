"""The claims check (benchmarks/check_claims.py): every figure of the README's results tables and of
BENCHMARKS.md's claims index equals what its committed result file gives, and a figure edited by hand, a figure
without a source or a claim not measured yet in the README is caught. Reads files only: no training."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
cc = pytest.importorskip("check_claims")

README = (ROOT / "README.md").read_text()
BENCH = (ROOT / "BENCHMARKS.md").read_text()


def test_every_published_figure_matches_its_result_file():
    t = time.perf_counter()
    errs = cc.check()
    assert errs == [], "\n".join(errs)
    assert 0 <= time.perf_counter() - t < 5  # a bound: the suite runs it on every commit


def test_the_tables_carry_claims():
    readme_ids = {cid for _, cid, _, _ in cc.claim_rows(README)}
    index_ids = [cid for _, cid, _, _ in cc.claim_rows(cc._first_table(BENCH))]
    assert {"anomaly-fresh", "semisup-100", "compare-mnist"} <= readme_ids
    assert set(index_ids) == set(cc.REGISTRY) and len(index_ids) == len(set(index_ids))
    # nothing the README prints is partial or without a result file
    assert all(cc.REGISTRY[cid].status == "measured" for cid in readme_ids)


def _edit_digit(text: str, cid: str, column: str = "figure") -> tuple[str, str, str]:
    """``text`` with the first digit of a figure in claim ``cid``'s ``column`` changed by one."""
    lines = text.splitlines()
    for lineno, c, row, _ in cc.claim_rows(text):
        if c == cid:
            cell = row[column]
            figure = cc.numbers(cell)[0]
            new_figure = figure[:-1] + str((int(figure[-1]) + 1) % 10)
            new_cell = re.sub(rf"(?<![\w.,`]){re.escape(figure)}(?![\d])", new_figure, cell, count=1)
            assert new_cell != cell
            lines[lineno - 1] = lines[lineno - 1].replace(cell, new_cell, 1)
            return "\n".join(lines) + "\n", figure, new_figure
    raise AssertionError(f"claim {cid} not found")


@pytest.mark.parametrize(
    "cid,column",
    [
        ("anomaly-fresh", "figure"),
        ("semisup-100", "figure"),
        ("ring", "figure"),
        ("robustness", "figure"),
        ("compare-mnist", "ebgan"),
    ],
)
def test_a_readme_figure_edited_by_hand_fails(cid, column):
    edited, old, new = _edit_digit(README, cid, column)
    errs = cc.check_text(edited, BENCH)
    assert any(
        e.startswith("README.md:") and f"`{cid}`" in e and f"is {new} where" in e and f"give(s) {old}" in e
        for e in errs
    ), errs


@pytest.mark.parametrize("cid", ["semisup-speed", "lapgan", "stacked-mnist", "reliability"])
def test_an_index_figure_edited_by_hand_fails(cid):
    edited, old, new = _edit_digit(BENCH, cid)
    errs = cc.check_text(README, edited)
    assert any(e.startswith("BENCHMARKS.md:") and f"`{cid}`" in e and f"is {new} where" in e for e in errs), errs


def test_a_published_anchor_edited_by_hand_fails():
    edited, _, new = _edit_digit(README, "anomaly-fresh", column="anchor")
    errs = cc.check_text(edited, BENCH)
    assert any("`anomaly-fresh`" in e and f"anchor 1 is {new}" in e for e in errs), errs


def test_a_figure_added_or_without_a_source_fails():
    line = next(l for l in README.splitlines() if "<!-- claim: unlearning -->" in l)
    more = README.replace(line, line.replace("labelled anomalies", "labelled anomalies (99.1 on another seed)"))
    assert any("`unlearning`: more figures than the result files give" in e for e in cc.check_text(more, BENCH))
    unknown = README.replace(line, line.replace("claim: unlearning", "claim: unlearning-seed1"))
    errs = cc.check_text(unknown, BENCH)
    assert any("`unlearning-seed1`: no such claim in the registry" in e for e in errs), errs


def test_a_claim_without_a_result_file_cannot_be_in_the_readme():
    line = next(l for l in README.splitlines() if "<!-- claim: mnist -->" in l)
    row = "| <!-- claim: conditional --> class-conditional MNIST | 97.3% of the requested digit, FID 2.60 | - | - |"
    errs = cc.check_text(README.replace(line, line + "\n" + row), BENCH)
    assert any("`conditional`: a missing claim" in e for e in errs), errs
    assert any("`conditional`: missing, so no figure may be printed" in e for e in errs), errs


def test_the_index_has_unique_titles_paired_markers_and_working_links():
    assert cc.check_text(README, BENCH + "\n## Claims index\n") != []
    twice = BENCH + "\n### Rejection on ring\n"
    assert any("2 sections are titled '### Rejection on ring'" in e for e in cc.check_text(README, twice))
    broken = BENCH.replace("<!-- memory:end -->", "", 1)
    assert any("'memory'" in e for e in cc.check_text(README, broken))
    dead = README.replace("(BENCHMARKS.md#", "(BENCHMARKS.md#x-", 1)
    assert any("no such section" in e for e in cc.check_text(dead, BENCH))


def test_numbers_are_figures_not_settings_or_words():
    assert cc.numbers(
        "`IS >= 3`: 59.4% [46.9, 71.9]; PacDCGAN2 1000 / 0.06; 41,124 images/s; 1.23-1.35x <!-- claim: x1 -->"
    ) == ["59.4", "46.9", "71.9", "1000", "0.06", "41,124", "1.23", "1.35"]


def test_gitub_anchors():
    assert (
        cc.slug("The paper's margin sweep, Fig. 9 (`benchmarks/robustness.py --margin`)")
        == "the-papers-margin-sweep-fig-9-benchmarksrobustnesspy---margin"
    )
    assert cc.anchors("## a\n## a\n```\n## b\n```\n") == {"a", "a-1"}


def test_compare_tables_name_the_rows_compare_losses_would_use():
    """results/compare-tables.json is derived from compare_losses.py's config keys; they must still agree (a
    Config field added since would orphan stored runs, as grad_overlap once did)."""
    compare = pytest.importorskip("compare_losses")
    from ebgan.config import PRESETS

    tables = json.loads((ROOT / cc.COMPARE_TABLES).read_text())["tables"]
    for optim in ("own", "preset", "defaults"):
        for d in compare.DATASETS:
            steps = compare.DEFAULT_STEPS_MNIST if d == "mnist" else PRESETS[d]["steps"]
            for loss in ("ebgan", "began", "loss-sensitive", "wgan-gp"):
                seeds = compare.DEFAULT_SEEDS[d].split(",")
                keys = [compare.config_key(compare.run_config(d, loss, int(s), steps, optim)[0]) for s in seeds]
                assert tables["main"][optim][d][loss] == keys, (optim, d, loss)


def test_write_record(tmp_path, monkeypatch):
    import _report

    monkeypatch.setattr(_report, "RESULTS", tmp_path)
    path = _report.write_record("speed", {"images_per_s": {"reference": 601.2}}, command="python x.py", threads=1)
    rec = json.loads(path.read_text())
    assert path == tmp_path / "speed.json"
    assert rec["benchmark"] == "speed" and rec["command"] == "python x.py" and rec["threads"] == 1
    assert rec["figures"] == {"images_per_s": {"reference": 601.2}}
    assert {"date", "commit", "machine"} <= set(rec)


def test_a_new_section_goes_before_the_history_and_an_old_one_is_replaced_in_place(tmp_path, monkeypatch):
    report = pytest.importorskip("_report")
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# B\n\n<!-- a:start -->\nold\n<!-- a:end -->\n\n## History: superseded results\n\nx\n")
    monkeypatch.setattr(report, "BENCHMARKS", bench)
    report.write_section("b", "new b")
    report.write_section("a", "new a")
    assert bench.read_text() == (
        "# B\n\n<!-- a:start -->\nnew a\n<!-- a:end -->\n\n"
        "<!-- b:start -->\nnew b\n<!-- b:end -->\n\n## History: superseded results\n\nx\n"
    )
