#!/usr/bin/env bash
# Regenerates docs/figures/ and docs/reports/xin2019_conll2003.html with the current code:
# a 5-seed xin2019 study on CoNLL-2003 (seed 42's analysis and the comparison of the 5 seeds) and one xin2019
# run (seed 42) on each of the three other corpora for their sensitivity heatmaps.
# Run from the repository root:  bash bench/doc_figures.sh [WORK_DIR]   (about 10 minutes on 2 cores)
set -euo pipefail
data=${DATA:-../shared/data}
work=${1:-/tmp/nerve_doc_figures}
nerve=${NERVE:-.venv/bin/nerve}
mkdir -p "$work"
"$nerve" study xin2019 --data "$data/conll2003" --seeds 5 --out "$work/study" --no-progress
run="$work/study/runs/base/seed42/analysis"
mkdir -p docs/figures/xin2019_seed42 docs/figures/xin2019_compare docs/reports
for f in sensitivity_heatmap ranking_table ablation_grid ablation_B-PER ablation_I-MISC per_tag_accuracy; do
  cp "$run/$f.png" docs/figures/xin2019_seed42/
done
cp "$run/ablation_summary.csv" "$run/ranking.txt" docs/figures/xin2019_seed42/
for f in corr_mean.png similarity_mean.png overlap_mean.png consistency.csv unit_matching.csv findings.json; do
  cp "$work/study/compare/base/$f" docs/figures/xin2019_compare/
done
cp "$work/study/report.html" docs/reports/xin2019_conll2003.html
for corpus in mit_movie nlpba2004 wnut17; do
  "$nerve" --threads 1 train xin2019 --data "$data/$corpus" --out "$work/$corpus" --no-progress > /dev/null
  "$nerve" --threads 1 analyze "$work/$corpus" --out "$work/$corpus/analysis" > /dev/null 2>&1
  mkdir -p "docs/figures/$corpus"
  cp "$work/$corpus/analysis/sensitivity_heatmap.png" "docs/figures/$corpus/"
done
echo "figures written to docs/figures and docs/reports"
