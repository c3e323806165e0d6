"""The `nerve` argument parser: every subcommand, option, help text and default in one place."""

from __future__ import annotations

import argparse

SPLIT_HELP = "dev, test, train or a CoNLL file path"
# nerve.study.STUDY_METHODS (a test checks)
STUDY_METHODS_TEXT = "sensitivity,probeless,selectivity,gradxact,ig,ig_mean,random"
STUDY_DRAWS = (1000, 100)


def _globals(p: argparse.ArgumentParser, top: bool) -> None:
    """--device, --threads and --debug, accepted before the subcommand and after it.

    On the subcommands the defaults are SUPPRESS, so a value given before the subcommand is kept unless one is
    given after it too.
    """
    keep = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], **({"default": "auto"} if top else keep),
                   help="where models run (default: auto = cuda when present, else cpu)")
    p.add_argument("--threads", type=int, metavar="N", **({"default": None} if top else keep),
                   help="torch CPU threads per process, and per study worker (default: 1, the fastest for "
                        "these small models: docs/RESULTS.md)")
    p.add_argument("--debug", action="store_true", **({} if top else keep),
                   help="show Python tracebacks on internal errors (default: one line)")


def _sub(sub, name: str, help: str, **kw) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, **kw)
    _globals(p, top=False)
    return p


def build_parser() -> argparse.ArgumentParser:
    from nerve import __version__

    ap = argparse.ArgumentParser(prog="nerve", description="Train NER taggers and dissect them neuron by neuron.")
    ap.add_argument("--version", action="version", version=f"nerve {__version__}",
                    help="print the version (nerve X.Y.Z) and exit (default: run the COMMAND)")
    _globals(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "train", "train a tagger (resumes from the run folder's checkpoint)")
    p.add_argument("config", help="TOML config, preset name (xin2019, ncrfpp_best), NCRF++ .config file, or a "
                                   "Hugging Face model folder to fine-tune (needs nerve[hf]; --set model.head=crf, "
                                   "train.lr=...: docs/HF.md)")
    p.add_argument("--data", help="corpus folder with train.txt, valid.txt, test.txt, or a registered corpus name "
                                  "(default: the config's data paths)")
    p.add_argument("--out", help="run folder (required; NCRF++ configs: default model_dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. train.epochs=3 (repeatable; default: none)")
    p.add_argument("--repair-bio", action="store_true",
                   help="turn an invalid I-x (after O or another type) into B-x (default: refuse the file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (default: on a terminal)")

    p = _sub(sub, "study", "train and analyse several seeds/configs, compare them, write report.html")
    p.add_argument("config", nargs="?", default="xin2019",
                   help="TOML config or preset name, or a Hugging Face model folder (seeds fine-tuned, analysed, "
                        "compared and taken layer by layer) (default: xin2019)")
    p.add_argument("--data", default="conll2003", help="corpus folder or registered name (default: conll2003)")
    p.add_argument("--seeds", type=int, default=10, metavar="N",
                   help="runs per config, seeds 42, 43, ... (default: 10; at most 1000)")
    p.add_argument("--out", default=None, help="study folder (default: studies/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value for every run (repeatable; default: none)")
    p.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2",
                   help="train every combination of these values (repeatable; default: the config alone)")
    p.add_argument("--cell-set", dest="cell_sets", action="append", default=[],
                   metavar="GRIDKEY=V:SECTION.KEY=VALUE",
                   help="a setting for the grid cells where GRIDKEY is V, e.g. a recipe for the word CNN: "
                        "model.encoder=cnn:train.lr=0.1 (repeatable; default: none)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local worker processes or Ray tasks (default: local)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="parallel runs (default: the number of cores)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--ray-node-ip", dest="ray_node_ip", default=None, metavar="ADDR",
                   help="the address of this machine's interface that Ray uses and advertises (default: 127.0.0.1 "
                        "for a local Ray; with --address, Ray's own choice); Ray's servers may still listen on every "
                        "interface: see the README's Ray section")
    p.add_argument("--keep-going", action="store_true",
                   help="when a run fails, finish the others, report them and list the failed ones, then exit "
                        "with an error; a worker killed from outside still stops the study (re-run to resume) "
                        "(default: the first failure stops the study)")
    p.add_argument("--rerun-changed", action="store_true",
                   help="retrain runs whose folders hold a run of another config or corpus (default: stop and "
                        "say which)")
    p.add_argument("--no-figures", action="store_true",
                   help="draw no figure (every table is still written; `nerve plot analysis RUN/analysis` draws a "
                        "run's figures later) (default: the first seed's and the comparisons' figures)")
    p.add_argument("--methods", default=None, metavar="M1,M2",
                   help="ranking methods ranked on dev and judged by top-k ablation on test in every run: "
                        "sensitivity, probeless, probe, selectivity, gradxact, ig, ig_mean, random; none for none "
                        f"(default: {STUDY_METHODS_TEXT}, every method but the slow probe)")
    p.add_argument("--ablate", default=None, metavar="VALUES",
                   help="what an ablated unit becomes in those sweeps: zero, mean (its dev mean), resample (its "
                        "value at a random other test token), comma-separated (default: zero,mean)")
    _causal_options(p, STUDY_DRAWS)  # nerve.study.STUDY_DRAWS
    p.add_argument("--basis", default="neurons", metavar="B1,B2",
                   help="also analyse every run in these bases (pca, ica, sae; into analysis/bases/NAME) and compare "
                        "them with the neurons over the seeds (bases_across_runs.csv, bases_paired.csv); leace adds "
                        "each tag's linear erasure (default: neurons only)")
    p.add_argument("--max-k", type=int, default=None, metavar="K",
                   help="ablate at most K units in the analyses' sweeps, e.g. 50 for wide models (every run's "
                        "model must have K units or more; default: every unit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (default: on a terminal)")

    p = _sub(sub, "evaluate", "score a trained run on a split (conlleval entity P/R/F1, accuracies)")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="test", help=f"{SPLIT_HELP} (default: test)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON (default: a table)")

    p = _sub(sub, "decode", "tag a CoNLL file or plain text with a run, or run an NCRF++ decode config")
    p.add_argument("run", help="run folder, or an NCRF++ .config with status=decode (raw_dir, decode_dir, "
                               "load_model_dir or dset_dir, nbest)")
    p.add_argument("input", nargs="?", help="CoNLL file or plain text (one tokenised sentence a line); - reads "
                                            "standard input (required with a run folder)")
    p.add_argument("--out", help="output file, - for standard output (required with a run folder)")
    p.add_argument("--nbest", type=int, default=None, metavar="N",
                   help="also write the N best paths to OUT.nbest.jsonl (CRF models; default: 1; NCRF++ configs: "
                        "their nbest)")
    p.add_argument("--format", choices=["auto", "conll", "text"], default="auto",
                   help="input format (default: auto = CoNLL when lines hold a word and a tag column)")

    p = _sub(sub, "analyze", "neuron analysis of a trained run (Xin, Lin & Yu 2019)")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="dev", help=f"the split analysed: {SPLIT_HELP} (default: dev)")
    p.add_argument("--bucket", choices=["predicted", "gold"], default="predicted",
                   help="which labels group the tokens for sensitivity (default: predicted)")
    p.add_argument("--max-k", type=int, default=None, metavar="K",
                   help="largest number of ablated units (default: all units)")
    p.add_argument("--random-draws", type=int, default=20, metavar="N",
                   help="random unit sets per k, the baseline of the sweep (default: 20; at most 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random unit sets (default: 0)")
    p.add_argument("--cluster", action="store_true", help="cluster units in the heatmap (default: unit order)")
    p.add_argument("--methods", default="", metavar="M1,M2",
                   help="also judge these ranking methods by top-k ablation into methods.csv: sensitivity, "
                        "probeless, probe, selectivity, gradxact, ig, ig_mean (ig from the ranking split's mean), "
                        "random (default: none)")
    p.add_argument("--rank-split", default=None,
                   help=f"the split the --methods rank on ({SPLIT_HELP}; default: --split, i.e. the same split)")
    p.add_argument("--ablate", default="zero", metavar="VALUES",
                   help="what an ablated unit becomes in methods.csv: zero, mean (its ranking-split mean), "
                        "resample (its value at a random other token of --split, seeded by --seed), "
                        "comma-separated (default: zero)")
    _causal_options(p)
    p.add_argument("--basis", default="neurons", metavar="B1,B2",
                   help="the units the analysis reads and intervenes on: neurons, pca (principal components), ica "
                        "(independent components), sae (sparse autoencoder features), fitted on the ranking split; "
                        "the first into --out, each other into --out/bases/NAME; leace adds each tag's linear "
                        "erasure (leace.csv) to the first (default: neurons)")
    p.add_argument("--no-figures", action="store_true",
                   help="write the tables only; `nerve plot analysis` draws the figures from them later (default: "
                        "figures as PNG and SVG)")
    p.add_argument("--formats", default="png,svg", metavar="F1,F2",
                   help="figure formats, some of png (300 dpi), svg, pdf (default: png,svg)")
    p.add_argument("--out", required=True, help="analysis folder (required)")

    p = _sub(sub, "compare", "tag correlations, weight similarity, top-k overlap and findings across runs")
    p.add_argument("runs", nargs="+", help="run folders (analysed on the fly when they have no analysis/) or "
                                           "analysis folders")
    p.add_argument("--out", required=True, help="comparison folder (required)")
    p.add_argument("--k", type=int, default=10, help="top-k for the overlap matrix (default: 10)")
    p.add_argument("--no-run-figures", action="store_true",
                   help="draw the matrices' means only; each run's matrices are still written as CSV (default: "
                        "each run's figures too)")
    p.add_argument("--no-figures", action="store_true",
                   help="draw no figure: neither in the analyses made on the fly nor of the comparison; every table "
                        "and matrix is still written (default: figures drawn)")

    p = _sub(sub, "depth", "layer by layer: ranking methods at every site of fine-tuned transformer runs, judged "
                           "inside the model against random units (needs nerve[hf])")
    p.add_argument("runs", nargs="+", help="run folders of `nerve train MODEL_FOLDER` (e.g. the seeds of one recipe)")
    p.add_argument("--out", required=True,
                   help="depth folder (required): runs/NAME/depth.csv, depth_summary.csv, depth_findings.csv, "
                        "figures, report.html")
    p.add_argument("--sites", default="",
                   help="comma-separated sites (default: ffn1, layer1, ..., layerN; classifier_in too with "
                        "model.pooling = mean, else it equals layerN read at the same positions)")
    p.add_argument("--methods", default="sensitivity,probeless,selectivity,gradxact,atp_mean",
                   help="of sensitivity (Xin et al.'s, with the site's local read-out; needed for the findings), "
                        "probeless, selectivity, gradxact, atp_mean (default: all five)")
    p.add_argument("--k", type=int, default=10, help="units intervened per tag and site (default: 10)")
    p.add_argument("--ablate", default="mean", choices=["mean", "zero"],
                   help="the units' value: their dev mean or 0 (default: mean)")
    p.add_argument("--rank-sentences", type=int, default=1000,
                   help="first dev sentences the methods rank on (default: 1000; 0 = all)")
    p.add_argument("--score-sentences", type=int, default=500,
                   help="first test sentences the interventions are scored on (default: 500; 0 = all)")
    p.add_argument("--random-draws", type=int, default=20, help="random k-unit sets per site (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sets (default: 0)")

    p = _sub(sub, "export-activations", "write a run's activations in NeuroX's JSON format")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="dev", help=f"{SPLIT_HELP} (default: dev)")
    p.add_argument("--out", required=True, help="output .json (required; .tokens.txt and .labels.txt beside it)")

    p = _sub(sub, "explore", "write the explorer: a page over an analysed run or a study that opens from file://")
    p.add_argument("source", help="run folder with analysis/, analysis folder, or study folder")
    p.add_argument("--out", required=True, help="explorer folder: index.html and data/ (required)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (default: on a terminal)")

    p = _sub(sub, "serve", "the explorer backed by a local server holding the model: tag typed sentences, ablate "
                           "units live")
    p.add_argument("run", help="run folder (its analysis in RUN/analysis unless --analysis)")
    p.add_argument("--analysis", default=None, help="the run's analysis folder (default: RUN/analysis)")
    p.add_argument("--port", type=int, default=8000, help="port, 0 for a free one (default: 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")

    from nerve.data.cli import add_data_parser

    _globals(add_data_parser(sub), top=False)

    p = _sub(sub, "plot", "figures of one analysis, or across runs")
    psub = p.add_subparsers(dest="plot", required=True, metavar="FIGURE")
    q = _sub(psub, "analysis", "draw every figure of an analysed folder from its saved tables (e.g. of a study's "
                               "run analysed without figures)")
    q.add_argument("analysis", help="analysis folder (or the run folder holding analysis/)")
    q.add_argument("--out", required=True, help="folder the figures are written to (required)")
    q.add_argument("--formats", default="png,svg,pdf", metavar="F1,F2",
                   help="figure formats, some of png (300 dpi), svg, pdf (default: png,svg,pdf)")
    q = _sub(psub, "ablation", "overlay one tag's ablation curve from several analysed runs")
    q.add_argument("runs", nargs="+", help="analysis folders (or run folders holding analysis/)")
    q.add_argument("--tag", required=True, help="the tag whose curve is drawn, e.g. B-ORG (required)")
    q.add_argument("--labels", default=None,
                   help="comma-separated legend labels, one per run (default: each run's folder name, with its "
                        "parents where two runs share a name, e.g. base/seed1)")
    q.add_argument("--out", required=True,
                   help="output file: a .png (300 dpi), .svg or .pdf name writes that file alone; a name without "
                        "a suffix writes NAME.png, NAME.svg and NAME.pdf (required)")
    return ap


def _causal_options(p, draws: tuple[int, int] = (0, 0)) -> None:
    """The causal benchmark's options of `nerve analyze` and `nerve study` (``AnalysisSpec``'s sufficiency,
    judged_draws, matched_draws (defaults ``draws``), translation)."""
    p.add_argument("--sufficiency", action="store_true",
                   help="also sweep each method's top k kept with every other unit ablated, into sufficiency.csv "
                        "and sufficiency_summary.csv (default: necessity only)")
    p.add_argument("--judged-draws", type=int, default=draws[0], metavar="N",
                   help="random unit sets decoded at k = 1, 5, 10, 20 alone, so a method's p can reach 1/(N+1), "
                        f"into methods_draws.npz and methods_baselines.csv (default: {draws[0]}; at most 100,000)")
    p.add_argument("--matched-draws", type=int, default=draws[1], metavar="N",
                   help="random sets matched to each method's top k by variance decile (over the ranking split) at "
                        f"the reported k, per tag, into the same files (default: {draws[1]})")
    p.add_argument("--translation", action="store_true",
                   help="also move each B- tag's top k units to another B- tag's or O's mean on its gold tokens and "
                        "count how often the prediction follows (Antverg & Belinkov 2022), into translation.csv and "
                        "translation_summary.csv (default: off)")
