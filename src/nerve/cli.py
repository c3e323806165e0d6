"""The `nerve` command line: train, evaluate, decode, analyze, plot, export-activations."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from nerve.cli_args import build_parser
from nerve.config.presets import resolve_config
from nerve.errors import NerveError, NerveWarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", NerveWarning)
        shown = warnings.showwarning

        def show(message, category, *rest, **kw):
            if issubclass(category, NerveWarning):
                print(f"nerve: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, *rest, **kw)

        warnings.showwarning = show
        return _run(args)


def _run(args) -> int:
    try:
        _set_up_torch(args)
        code = COMMANDS[args.command](args) or 0
        sys.stdout.flush()  # a reader that has gone shows here, inside the handler, not at interpreter exit
        return code
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


DEFAULT_THREADS = 1  # fastest for these models on 1-16 cores, other cores idle or busy (docs/RESULTS.md)


def _set_up_torch(args) -> None:
    """Threads (default :data:`DEFAULT_THREADS`) and ``args.device`` made concrete ("auto" -> cuda or cpu)."""
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise NerveError(f"--threads {args.threads}: expected a number in 1..1024")
    if args.command == "data":
        return  # no model: torch is not even imported
    from nerve.run import pick_device
    from nerve.threads import set_threads

    set_threads(args.threads or DEFAULT_THREADS)
    args.device = str(pick_device(args.device))


def cmd_train(args) -> int:
    from nerve.config import load_config
    from nerve.data.prepare import resolve_data as resolve_data_paths
    from nerve.train import brief, train

    if _is_model_folder(args.config):  # a Hugging Face model folder: fine-tune it
        return _train_hf(args)
    config = resolve_config(args.config)
    cfg = load_config(config, args.overrides + (["data.repair_bio=true"] if args.repair_bio else []))
    out = args.out
    if out is None and config.endswith(".config"):
        from nerve.config.ncrfpp import ncrfpp_run_dir

        out = ncrfpp_run_dir(config)
    if not out:
        raise NerveError("train: --out RUN_DIR is required (or model_dir in an NCRF++ config)")
    resolve_data_paths(cfg, resolve_data(args.data))
    metrics = train(cfg, out, args.device, progress=False if args.no_progress else None,
                    on_epoch=lambda record: print(json.dumps(brief(record)), flush=True))
    print(f"done: best epoch {metrics['best_epoch']}, dev F1 {metrics['dev']['f1']:.4f}, "
          f"test F1 {metrics['test']['f1']:.4f} -> {out}", file=sys.stderr)
    return 0


def _train_hf(args) -> int:
    """``nerve train MODEL_FOLDER``: fine-tune a Hugging Face encoder or token classifier (``nerve.hf``)."""
    from nerve.data.prepare import resolve_data as resolve_data_paths
    from nerve.hf import require

    require()
    from nerve.hf.config import hf_config
    from nerve.hf.train import fine_tune
    from nerve.train import brief

    if not args.out:
        raise NerveError("train: --out RUN_DIR is required")
    if args.data is None:
        raise NerveError("train: --data CORPUS is required with a Hugging Face model folder")
    cfg = hf_config(args.config, args.overrides + (["data.repair_bio=true"] if args.repair_bio else []))
    resolve_data_paths(cfg, resolve_data(args.data))
    metrics = fine_tune(cfg, args.out, on_epoch=lambda record: print(json.dumps(brief(record)), flush=True),
                        device=args.device)
    print(f"done: best epoch {metrics['best_epoch']}, dev F1 {metrics['dev']['f1']:.4f}, "
          f"test F1 {metrics['test']['f1']:.4f} -> {args.out}", file=sys.stderr)
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
    from nerve import study as studies

    if _is_model_folder(args.config):  # a Hugging Face model folder: its study over seeds
        return _study_hf(args)
    config = resolve_config(args.config)
    out = args.out or str(Path("studies") / Path(config).stem)
    analysis = _study_analysis(args)
    names = _basis_names(args.basis)
    analysis = analysis.replace(leace="leace" in names)
    spec = studies.StudySpec(config, resolve_data(args.data), out, args.seeds, tuple(args.overrides or ()),
                             tuple(args.grid or ()), tuple(args.cell_sets or ()), analysis,
                             tuple(n for n in names if n not in ("neurons", "leace")))
    engine = studies.Engine(args.engine, args.workers, args.address, not args.no_progress, args.rerun_changed,
                            args.keep_going, args.ray_node_ip)
    report = studies.study(spec, engine, (args.device, args.threads or DEFAULT_THREADS))
    print(f"report: {report}", file=sys.stderr)
    return 0


def _study_analysis(args):
    """Every study run's ``AnalysisSpec`` from ``nerve study``'s options (``nerve.study.study_analysis``)."""
    from nerve import study as studies

    methods = None if args.methods is None else [m for m in _list(args.methods) if m != "none"]
    draws = (args.judged_draws, args.matched_draws) if methods is None or methods else (0, 0)
    analysis = studies.study_analysis(methods, None if args.ablate is None else _list(args.ablate), args.max_k,
                                      args.sufficiency, draws)
    analysis = analysis.replace(translation=True) if args.translation else analysis
    return analysis.replace(figures=()) if args.no_figures else analysis


def _is_model_folder(path: str) -> bool:
    """Whether ``path`` is a Hugging Face model folder (its config.json), which train and study fine-tune."""
    return (Path(path) / "config.json").is_file()


def _study_hf(args) -> int:
    """``nerve study MODEL_FOLDER``: fine-tune the seeds, analyse, compare, go layer by layer (``nerve.hf_study``)."""
    from nerve.hf import require

    require()
    from nerve.hf.depth import DepthSpec
    from nerve.hf_study import HFStudySpec, hf_study

    unsupported = [name for name, given in (("--grid", args.grid), ("--cell-set", args.cell_sets),
                                            ("--engine ray", args.engine == "ray"),
                                            ("--basis", args.basis != "neurons"), ("--workers", args.workers),
                                            ("--keep-going", args.keep_going),
                                            ("--rerun-changed", args.rerun_changed)) if given]
    if unsupported:
        raise NerveError(f"nerve study MODEL_FOLDER: {', '.join(unsupported)} not supported for a Hugging Face model "
                         "(its seeds run one after another in this process)")
    analysis = _study_analysis(args)
    out = args.out or str(Path("studies") / Path(args.config).resolve().name)
    spec = HFStudySpec(args.config, resolve_data(args.data), out, args.seeds, tuple(args.overrides or ()), analysis,
                       DepthSpec())
    report = hf_study(spec)
    print(f"report: {report}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from nerve.evaluate import evaluate_run, format_scores

    scores = evaluate_run(args.run, args.split, args.device)
    print(json.dumps(scores, indent=2) if args.json else format_scores(scores))
    return 0


def cmd_decode(args) -> int:
    if args.run.endswith(".config") and Path(args.run).is_file():
        return _decode_ncrfpp(args)
    from nerve.decode import decode_file

    if args.input is None or args.out is None:
        raise NerveError("decode RUN_DIR INPUT --out OUTPUT: give the input file (- for standard input) and "
                         "--out (- for standard output), or an NCRF++ decode config instead of RUN_DIR")
    n = decode_file(args.run, args.input, args.out, nbest=args.nbest, fmt=args.format, device=args.device)
    print(f"decoded {n} sentences -> {'standard output' if args.out == '-' else args.out}", file=sys.stderr)
    return 0


def _decode_ncrfpp(args) -> int:
    from nerve.config.ncrfpp import read_ncrfpp_decode
    from nerve.decode import decode, ncrfpp_output
    from nerve.io import atomic_write_text

    if args.input is not None or args.out is not None:
        raise NerveError(f"decode {args.run}: an NCRF++ decode config names its input (raw_dir) and output "
                         "(decode_dir); give neither INPUT nor --out")
    job = read_ncrfpp_decode(args.run)
    nbest = args.nbest if args.nbest is not None else job.nbest
    res = decode(str(job.run_dir), str(job.raw), nbest or 1, "conll", args.device)
    atomic_write_text(job.out, ncrfpp_output(res, nbest))
    what = f"{nbest}-best" if nbest else "1-best"
    print(f"decoded {len(res.sentences)} sentences ({what}) with {job.run_dir} -> {job.out}", file=sys.stderr)
    return 0


def cmd_analyze(args) -> int:
    from nerve.analysis.core import AnalysisSpec
    from nerve.analyze import analyze_run

    if args.no_figures and args.formats != "png,svg":
        raise NerveError(f"--formats {args.formats}: --no-figures draws no figure; give one of them")
    out_folder(args.out)
    names = _basis_names(args.basis) or ["neurons"]
    bases = [n for n in names if n != "leace"] or ["neurons"]
    specs = [AnalysisSpec(split=args.split, bucket=args.bucket, max_k=args.max_k, random_draws=args.random_draws,
                          seed=args.seed, cluster=args.cluster, methods=_list(args.methods),
                          rank_split=args.rank_split, interventions=_list(args.ablate), sufficiency=args.sufficiency,
                          judged_draws=args.judged_draws, matched_draws=args.matched_draws,
                          translation=args.translation, basis=b, leace="leace" in names and i == 0,
                          figures=() if args.no_figures else _list(args.formats)) for i, b in enumerate(bases)]
    for i, spec in enumerate(specs):  # every spec checked before the first analysis starts
        out = args.out if i == 0 else os.path.join(args.out, "bases", spec.basis)
        summary = analyze_run(args.run, out, spec, device=args.device)
        print(f"analysis{'' if spec.basis == 'neurons' else ' in basis ' + spec.basis} written to {out} "
              f"({summary.get('seconds', 0):.1f}s)", file=sys.stderr)
    return 0


def _basis_names(text: str) -> list[str]:
    """The names of ``--basis`` (checked by the specs), none given twice."""
    names = _list(text)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NerveError(f"--basis {text}: {twice[0]} is given twice")
    return names


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def out_folder(path: str) -> Path:
    """An output folder argument, refused at once when a file is in the way."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NerveError(f"{p}: is a file; expected a folder (or a path that does not exist yet)")
    return p


def cmd_compare(args) -> int:
    from nerve.analysis.compare import CompareSpec
    from nerve.analysis.core import AnalysisSpec
    from nerve.analysis.verdicts import findings_table
    from nerve.analyze import compare_analyses, current_analyses

    out_folder(args.out)
    spec = AnalysisSpec(figures=()) if args.no_figures else AnalysisSpec()  # of the analyses made on the fly
    dirs = current_analyses(args.runs, spec, args.device, lambda msg: print(msg, file=sys.stderr))
    results, methods = compare_analyses(dirs, args.out, CompareSpec(
        k=args.k, run_figures=not args.no_run_figures, figures=not args.no_figures))
    print(findings_table(results))
    if methods is not None:
        print(f"ranking methods across runs: {methods['path']}", file=sys.stderr)
    print(f"comparison written to {args.out}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from nerve.analysis.capture import export_neurox

    n = export_neurox(args.run, args.split, args.out, device=args.device)
    print(f"wrote activations of {n} sentences -> {args.out}", file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    if args.plot == "analysis":
        return _plot_analysis(args)
    from nerve.analysis.compare import check_analysis
    from nerve.analyze import analysis_dir
    from nerve.report.ablation_figures import plot_ablation_overlay, run_labels

    paths = []
    for r in args.runs:
        analysis = analysis_dir(Path(r))
        if not (analysis / "ablation.csv").is_file():
            raise NerveError(f"{r}: no ablation.csv (run `nerve analyze` first)")
        if "ablation.csv" not in check_analysis(analysis):
            raise NerveError(f"{analysis}: the analysis recorded no ablation.csv; re-run `nerve analyze`")
        paths.append(analysis / "ablation.csv")
    labels = args.labels.split(",") if args.labels else run_labels(paths)
    if len(labels) != len(paths):
        raise NerveError(f"--labels has {len(labels)} names for {len(paths)} runs")
    written = plot_ablation_overlay(paths, labels, args.tag, args.out)
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)
    return 0


def _plot_analysis(args) -> int:
    from nerve.analyze import analysis_dir, plot_analysis

    out_folder(args.out)
    try:
        written = plot_analysis(analysis_dir(Path(args.analysis)), args.out, figures=_list(args.formats))
    except ValueError as err:
        raise NerveError(str(err)) from None
    print(f"wrote {len(written)} figure files to {args.out}", file=sys.stderr)
    return 0


def cmd_data(args) -> int:
    from nerve.data.cli import cmd_data as run

    return run(args)


def cmd_explore(args) -> int:
    from nerve.explore import write_explorer

    index = write_explorer(args.source, out_folder(args.out), progress=False if args.no_progress else None)
    print(f"explorer written to {index} (open it in a browser)", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    from nerve.explore.server import serve

    if not 0 <= args.port <= 65535:
        raise NerveError(f"--port {args.port}: expected a number in 0..65535")
    serve(args.run, args.host, args.port, args.analysis, args.device)
    return 0


def cmd_depth(args) -> int:
    from nerve.hf import require

    require()
    from nerve.hf.depth import DepthSpec
    from nerve.hf_study import depth_stage

    spec = DepthSpec(tuple(_list(args.sites)), tuple(_list(args.methods)), args.k, args.ablate, args.rank_sentences,
                     args.score_sentences, args.random_draws, args.seed)
    report = depth_stage(args.runs, Path(out_folder(args.out)), spec,
                         lambda msg: print(f"depth: {msg}", file=sys.stderr, flush=True))
    print(f"depth: report {report}", file=sys.stderr)
    return 0


COMMANDS = {"compare": cmd_compare, "depth": cmd_depth, "data": cmd_data, "study": cmd_study, "train": cmd_train,
            "evaluate": cmd_evaluate, "decode": cmd_decode, "analyze": cmd_analyze, "export-activations": cmd_export,
            "plot": cmd_plot}
COMMANDS.update({"explore": cmd_explore, "serve": cmd_serve})

if __name__ == "__main__":
    sys.exit(main())
