"""The figures of nerve, one import away: each figure family lives in its own module (unit_figures,
ablation_figures, matrix_figures) over the shared helpers of figures."""

from nerve.report.ablation_figures import (
    plot_ablation_grid,
    plot_ablation_overlay,
    plot_ablation_target,
    plot_ablation_targets,
)
from nerve.report.figures import FORMATS, check_formats, figure_formats, read_caption, save_figure
from nerve.report.matrix_figures import plot_tag_matrix
from nerve.report.unit_figures import plot_per_tag_accuracy, plot_ranking_table, plot_sensitivity_heatmap
from nerve.tags import tag_filenames

__all__ = ["plot_ablation_grid", "plot_ablation_overlay", "plot_ablation_target", "plot_ablation_targets",
           "plot_per_tag_accuracy", "plot_ranking_table", "plot_sensitivity_heatmap", "plot_tag_matrix",
           "save_figure", "figure_formats", "check_formats", "read_caption", "FORMATS", "tag_filenames",
           "draw_analysis"]


def draw_analysis(result, out, cluster: bool = False, split: str = "") -> list:
    """Every figure of one analysis (``nerve.analysis.pipeline.Analysis``) into the folder ``out``:
    sensitivity_heatmap, ranking_table, ablation_<tag> per tag, ablation_grid, per_tag_accuracy (in the formats of
    ``figure_formats``); ``split`` (the analysed split) is named in their titles and captions."""
    from pathlib import Path

    out = Path(out)
    tags, neurons = result.tags, result.neurons
    on = f" ({split} split)" if split else ""
    where = f"ranked and ablated on {split}" if split else ""
    bucket = result.summary.get("bucket", "predicted")
    said = f"{split} split, {bucket} labels" if split else f"{bucket} labels"
    paths = plot_sensitivity_heatmap(result.s, tags, neurons, out / "sensitivity_heatmap", cluster=cluster,
                                     title=f"Unit sensitivity per tag{on}, {bucket} labels", where=said)
    paths += plot_ranking_table(result.s, result.rankings, tags, neurons, out / "ranking_table", where=said)
    stems = tag_filenames(tags, reserved=("grid",))
    paths += plot_ablation_targets(result.rows, tags, [out / f"ablation_{stems[tag]}" for tag in tags], where)
    paths += plot_ablation_grid(result.rows, out / "ablation_grid", where)
    acc = result.accuracy
    paths += plot_per_tag_accuracy({**acc["per_tag"], "ALL": acc["ALL"], "F1": acc["F1"]}, out / "per_tag_accuracy",
                                   title=f"Per-tag recall{on}", where=f"{split} split" if split else "")
    return paths
