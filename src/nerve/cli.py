"""The `nerve` command line: train, evaluate, decode, analyze, plot, export-activations."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from nerve.config.presets import resolve_config
from nerve.errors import NerveError


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when present")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nerve", description="Train NER taggers and dissect them neuron by neuron.")
    ap.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a tagger (resumes from the run folder's checkpoint)")
    p.add_argument("config", help="TOML config or NCRF++ .config file")
    p.add_argument("--data", help="corpus folder with train.txt, valid.txt, test.txt")
    p.add_argument("--out", help="run folder (NCRF++ configs: default model_dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--repair-bio", action="store_true", help="turn invalid I-x (after O) into B-x")
    p.add_argument("--no-progress", action="store_true")
    _add_device(p)

    p = sub.add_parser("study", help="train and analyse several seeds/configs, compare them, write report.html")
    p.add_argument("config", nargs="?", default="xin2019", help="TOML config or preset name (default: xin2019)")
    p.add_argument("--data", default="conll2003", help="corpus folder or registered name (default: conll2003)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default=None, help="study folder (default: studies/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: cores)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--rerun-changed", action="store_true",
                   help="retrain runs whose folders hold a run of another config or corpus (default: stop and "
                        "say which)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("evaluate", help="score a trained run on a split")
    p.add_argument("run")
    p.add_argument("--split", default="test", help="dev, test or a CoNLL file path")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    _add_device(p)

    p = sub.add_parser("decode", help="tag a CoNLL file (tag appended as last column) or plain text")
    p.add_argument("run")
    p.add_argument("input")
    p.add_argument("--out", required=True)
    p.add_argument("--nbest", type=int, default=1, help="also write the N best paths (CRF models)")
    p.add_argument("--format", choices=["auto", "conll", "text"], default="auto")
    _add_device(p)

    p = sub.add_parser("analyze", help="neuron analysis of a trained run (Xin, Lin & Yu 2019)")
    p.add_argument("run")
    p.add_argument("--split", default="dev")
    p.add_argument("--bucket", choices=["predicted", "gold"], default="predicted")
    p.add_argument("--max-k", type=int, default=None, help="largest number of ablated units (default: all)")
    p.add_argument("--random-draws", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cluster", action="store_true", help="cluster units in the heatmap")
    p.add_argument("--out", required=True)
    _add_device(p)

    p = sub.add_parser("compare", help="tag correlations, weight similarity, top-k overlap and findings across runs")
    p.add_argument("runs", nargs="+", help="run folders (analysed on the fly when they have no analysis/)")
    p.add_argument("--out", required=True)
    p.add_argument("--k", type=int, default=10, help="top-k for the overlap matrix (default 10)")
    _add_device(p)

    p = sub.add_parser("export-activations", help="write a run's activations in NeuroX's JSON format")
    p.add_argument("run")
    p.add_argument("--split", default="dev")
    p.add_argument("--out", required=True)
    _add_device(p)

    from nerve.data.cli import add_data_parser

    add_data_parser(sub)

    p = sub.add_parser("plot", help="figures across runs")
    psub = p.add_subparsers(dest="plot", required=True)
    q = psub.add_parser("ablation", help="overlay one tag's ablation curve from several analysed runs")
    q.add_argument("runs", nargs="+", help="analysis folders (or run folders holding analysis/)")
    q.add_argument("--tag", required=True)
    q.add_argument("--labels", default=None, help="comma-separated legend labels")
    q.add_argument("--out", required=True, help="output file (.png; an .svg is written beside it)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads is not None:
            if not 1 <= args.threads <= 1024:
                raise NerveError(f"--threads {args.threads}: expected a number in 1..1024")
            import torch

            torch.set_num_threads(args.threads)
        return COMMANDS[args.command](args) or 0
    except NerveError as err:
        print(f"nerve: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `nerve evaluate RUN --json | head`: the reader has gone, nothing to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        from nerve.io import os_error

        print(f"nerve: error: {os_error(err, action='access')}", file=sys.stderr)
        return 2
    except MemoryError:
        print("nerve: error: out of memory; use a smaller batch (train.eval_batch_size, train.batch_size), "
              "fewer --random-draws or a smaller --max-k", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nerve: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"nerve: internal error: {type(err).__name__}: {err} (re-run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def cmd_train(args) -> int:
    from nerve.config import load_config
    from nerve.data.prepare import resolve_data as resolve_data_paths
    from nerve.run import pick_device
    from nerve.train import brief, train

    cfg = load_config(resolve_config(args.config), args.overrides + (["data.repair_bio=true"] if args.repair_bio
                                                                      else []))
    out = args.out or getattr(cfg, "ncrfpp_model_dir", None)
    if not out:
        raise NerveError("train: --out RUN_DIR is required")
    if hasattr(cfg, "ncrfpp_model_dir"):
        del cfg.ncrfpp_model_dir
    resolve_data_paths(cfg, resolve_data(args.data))
    metrics = train(cfg, out, pick_device(args.device), progress=False if args.no_progress else None,
                    on_epoch=lambda record: print(json.dumps(brief(record)), flush=True))
    print(f"done: best epoch {metrics['best_epoch']}, dev F1 {metrics['dev']['f1']:.4f}, "
          f"test F1 {metrics['test']['f1']:.4f} -> {out}", file=sys.stderr)
    return 0


def resolve_data(value: str | None) -> str | None:
    """A corpus folder, or a registered corpus name resolved through the corpus registry."""
    if value is None or Path(value).is_dir():
        return value
    try:
        from nerve.data.registry import resolve_corpus
    except ImportError:
        raise NerveError(f"--data {value}: no such folder") from None
    return str(resolve_corpus(value))


def cmd_study(args) -> int:
    from nerve.study import study

    config = resolve_config(args.config)
    out = args.out or str(Path("studies") / Path(config).stem)
    report = study(config, resolve_data(args.data), args.seeds, out, overrides=args.overrides, grid=args.grid,
                   engine=args.engine, workers=args.workers, address=args.address, progress=not args.no_progress,
                   rerun_changed=args.rerun_changed)
    print(f"report: {report}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from nerve.evaluate import evaluate_run, format_scores

    scores = evaluate_run(args.run, args.split, args.device or "cpu")
    print(json.dumps(scores, indent=2) if args.json else format_scores(scores))
    return 0


def cmd_decode(args) -> int:
    from nerve.decode import decode_file

    n = decode_file(args.run, args.input, args.out, nbest=args.nbest, fmt=args.format, device=args.device or "cpu")
    print(f"decoded {n} sentences -> {args.out}", file=sys.stderr)
    return 0


def cmd_analyze(args) -> int:
    from nerve.analyze import analyze_run

    out_folder(args.out)
    summary = analyze_run(args.run, args.out, split=args.split, bucket=args.bucket, max_k=args.max_k,
                          random_draws=args.random_draws, seed=args.seed, cluster=args.cluster,
                          device=args.device or "cpu")
    print(f"analysis written to {args.out} ({summary.get('seconds', 0):.1f}s)", file=sys.stderr)
    return 0


def analysis_dir(path: Path) -> Path:
    """An analysis folder given itself or the run folder that holds it in ``analysis/``."""
    return path / "analysis" if (path / "model.pt").is_file() or not (path / "sensitivity.csv").is_file() else path


def out_folder(path: str) -> Path:
    """An output folder argument, refused at once when a file is in the way."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NerveError(f"{p}: is a file; expected a folder (or a path that does not exist yet)")
    return p


def cmd_compare(args) -> int:
    from nerve.analysis.compare import analysis_is_current, load_run_analysis
    from nerve.analysis.findings import evaluate_findings, findings_table, write_findings
    from nerve.analyze import analyze_run, compare

    out_folder(args.out)
    dirs = []
    for r in args.runs:
        run = Path(r)
        analysis = analysis_dir(run)
        if (run / "model.pt").is_file() and not analysis_is_current(analysis):
            why = "it has none" if not (analysis / "complete.json").exists() else "its analysis is out of date"
            print(f"analysing {run} ({why}) ...", file=sys.stderr)
            analyze_run(str(run), str(analysis), device=args.device or "cpu", progress=False)
        dirs.append(analysis)
    from nerve.folder import writer_lock

    with writer_lock(args.out, "nerve compare"):
        try:
            compare(dirs, args.out, k=args.k)
            results = evaluate_findings([load_run_analysis(d) for d in dirs])
        except ValueError as err:
            raise NerveError(str(err)) from None
        write_findings(Path(args.out) / "findings.json", results)
    print(findings_table(results))
    print(f"comparison written to {args.out}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from nerve.analysis.capture import export_neurox

    n = export_neurox(args.run, args.split, args.out, device=args.device or "cpu")
    print(f"wrote activations of {n} sentences -> {args.out}", file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    from nerve.analysis.compare import check_analysis
    from nerve.report.plots import plot_ablation_overlay

    paths = []
    for r in args.runs:
        analysis = analysis_dir(Path(r))
        if not (analysis / "ablation.csv").is_file():
            raise NerveError(f"{r}: no ablation.csv (run `nerve analyze` first)")
        if "ablation.csv" not in check_analysis(analysis):
            raise NerveError(f"{analysis}: the analysis recorded no ablation.csv; re-run `nerve analyze`")
        paths.append(analysis / "ablation.csv")
    labels = args.labels.split(",") if args.labels else [Path(r).name for r in args.runs]
    if len(labels) != len(paths):
        raise NerveError(f"--labels has {len(labels)} names for {len(paths)} runs")
    plot_ablation_overlay(paths, labels, args.tag, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_data(args) -> int:
    from nerve.data.cli import cmd_data as run

    return run(args)


COMMANDS = {"compare": cmd_compare, "data": cmd_data, "study": cmd_study, "train": cmd_train,
            "evaluate": cmd_evaluate, "decode": cmd_decode, "analyze": cmd_analyze, "export-activations": cmd_export,
            "plot": cmd_plot}

if __name__ == "__main__":
    sys.exit(main())
