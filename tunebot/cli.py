"""The `tunebot` command line: parse arguments, load the config once, hand it to the stages.

    tunebot --help

Nothing heavy is imported here: stages, torch and the metrics load inside the command that
needs them, so `tunebot --help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tunebot import __version__
from tunebot.errors import TunebotError

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "acme-demo.yaml"


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML run config (see examples/)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set sft.lr=1e-4 (repeatable)",
    )


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="start over, replacing a finished adapter or checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    parser.add_argument(
        "--num-processes", type=int, default=1, metavar="N",
        help="data-parallel training in N processes (torchrun; gloo on CPU, NCCL on GPUs)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tunebot",
        description="FAQs and support logs -> instruction pairs -> LoRA fine-tune -> evaluation report.",
    )
    parser.add_argument("--version", action="version", version=f"tunebot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="run the whole pipeline on the bundled Japanese + English sample")
    demo.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    demo.add_argument("--force", action="store_true", help="redo stages that already finished")
    run = commands.add_parser("run", help="data -> train -> eval -> merge in one run directory")
    run.add_argument("config", nargs="?", help="YAML run config (see examples/); or give --data FILE...")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set sft.lr=1e-4 (repeatable)")
    run.add_argument("--data", nargs="+", metavar="FILE",
                     help="your own files: `tunebot init` them into NAME.yaml, then run it")
    run.add_argument("--force", action="store_true", help="redo stages that already finished")
    init = commands.add_parser("init", help="inspect your own files and write a commented config for them")
    init.add_argument("files", nargs="+", metavar="FILE",
                      help="FAQs (.csv .tsv .xlsx .json .jsonl .md) and support logs")
    init.add_argument("--out", help="where the config goes (default NAME.yaml)")
    init.add_argument("--name", help="the run's name (default: from the first file)")
    helps = {
        "data": "build instruction records and splits from the config's sources",
        "train": "fine-tune (LoRA, QLoRA, DoRA, IA3, prompt/prefix tuning, freeze, full) with TRL's SFTTrainer",
        "eval": "answer the test split with base, tuned and RAG; scores with 95%% CIs, paired tests, report.html",
        "merge": "merge the adapter into the base model (merged/)",
    }
    for name, text in helps.items():
        stage = commands.add_parser(name, help=text)
        _add_config(stage)
        if name == "train":
            _add_train_options(stage)
    tune = commands.add_parser("tune", help="search lr, LoRA r/alpha/dropout and epochs with Optuna (val loss)")
    _add_config(tune)
    tune.add_argument("--trials", type=int, metavar="N", help="number of trials (default: tune.trials)")
    tune.add_argument("--sampler", choices=["tpe", "grid"], help="tpe (default) or grid")
    models = commands.add_parser("models", help="provision/check the bundled default model")
    models.add_argument("--check", action="store_true", help="only report the cache state, convert nothing")
    models.add_argument("--rebuild", action="store_true", help="convert again even if the cache is fine")
    _add_serving_commands(commands)
    score = commands.add_parser(
        "score", help="score predictions against references (line-aligned files; answer_match tells the "
        "references apart, so give it more than one distinct reference)")
    score.add_argument("--pred", required=True, help="predictions, one per line (UTF-8)")
    score.add_argument("--ref", required=True, help="references, one per line (UTF-8)")
    score.add_argument("--lang", choices=["auto", "ja", "en"], default="auto", help="tokenization language")
    score.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _add_serving_commands(commands: argparse._SubParsersAction) -> None:
    """Adds `serve`, `ui` and `feedback`."""
    serve = commands.add_parser("serve",
                                help="OpenAI-compatible API for base and tuned (vLLM or transformers), --ui for the "
                                     "A/B page")
    serve.add_argument("run_dir", help="a run directory (runs/<name>) with config.yaml")
    serve.add_argument("--engine", choices=["auto", "vllm", "transformers"], help="default: serve.engine (auto)")
    serve.add_argument("--host", help="address to bind (default serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default serve.port, 8000)")
    serve.add_argument("--api-key", help="required key (default: $TUNEBOT_API_KEY); needed off loopback")
    serve.add_argument("--ui", action="store_true", help="also serve the Gradio A/B chat page at /")
    serve.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ui = commands.add_parser("ui", help="only the A/B chat page, in front of a remote OpenAI-compatible endpoint")
    ui.add_argument("api_url", help="the endpoint's base URL, e.g. http://gpu-box:8000/v1")
    ui.add_argument("--api-key", help="the endpoint's key (default: $TUNEBOT_API_KEY); also the page's password")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ui.add_argument("--models", help="comma-separated model ids (default: the endpoint's /v1/models)")
    ui.add_argument("--feedback", default="feedback.jsonl", help="where votes go (default ./feedback.jsonl)")
    export = commands.add_parser("export",
                                 help="the merged model as GGUF for llama.cpp/Ollama (+ model card, Modelfile)")
    export.add_argument("run_dir", help="a run directory with merged/")
    export.add_argument("--format", default="gguf", choices=["gguf", "ollama"], help="ollama also writes a Modelfile")
    export.add_argument("--quant", default="q8_0",
                        help="q8_0 (default), f16, or q4_k_m (llama.cpp's quantizer: pip install 'tunebot[gguf]')")
    export.add_argument("--out", help="default: RUN_DIR/export")
    runs = commands.add_parser("runs",
                               help="list the runs with their config, data size and right answers; --compare A B")
    runs.add_argument("runs_dir", nargs="?", default="runs", help="the runs folder (default ./runs)")
    runs.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two runs (names in RUNS_DIR, or paths)")
    feedback = commands.add_parser("feedback", help="export A/B votes as DPO preference pairs")
    feedback.add_argument("action", choices=["export"])
    feedback.add_argument("run_dir", help="a run directory with serve/feedback.jsonl")
    feedback.add_argument("--out", help="default: RUN_DIR/serve/preferences.jsonl")


def _cmd_stage(args: argparse.Namespace) -> int:
    from tunebot.config import load_config
    from tunebot.pipeline import open_run_dir, run_stage

    overrides = list(args.overrides)
    if args.command == "tune":
        overrides += [f"tune.{name}={getattr(args, name)}" for name in ("trials", "sampler")
                      if getattr(args, name) is not None]
    cfg = load_config(args.config, overrides)
    run_dir = open_run_dir(cfg)
    if args.command == "train":
        from sft.launch import train_command

        return train_command(cfg, run_dir, args)
    seconds = run_stage(args.command, cfg, run_dir)
    print(f"{args.command}: done in {seconds:.0f} s ({run_dir.root})")
    return 0


def _print_result(run_dir: Path, timings: dict[str, float], began: float) -> None:
    scores = run_dir / "eval" / "scores.json"
    print()
    if scores.is_file():
        from eval.stage import summary_text

        print(summary_text(json.loads(scores.read_text(encoding="utf-8"))))
    stages = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    print(f"\nrun directory: {run_dir}")
    print(f"wall time: {time.perf_counter() - began:.0f} s ({stages})")


def _cmd_run(args: argparse.Namespace) -> int:
    from tunebot.config import load_config
    from tunebot.pipeline import run_pipeline

    began = time.perf_counter()
    if args.command == "run" and getattr(args, "data", None):
        from data_tools.init_write import init_config

        written, lines = init_config(args.data)
        print("\n".join([f"init: wrote {written}", *lines]), flush=True)
        args.config = str(written)
    if args.command == "run" and not args.config:
        raise TunebotError("tunebot run needs a CONFIG, or --data FILE... to write one from your files")
    config = DEMO_CONFIG if args.command == "demo" else Path(args.config)
    if args.command == "demo" and not config.is_file():
        raise FileNotFoundError(f"{config}: the demo config ships with the source tree; run from a clone")
    cfg = load_config(config, args.overrides)
    run_dir, timings = run_pipeline(cfg, force=args.force)
    _print_result(run_dir.root, timings, began)
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from data_tools.init_write import init_config

    written, lines = init_config(args.files, args.out, args.name)
    print("\n".join([f"init: wrote {written} (each choice is explained in it)", *lines,
                      f"next: check {written}, then `tunebot run {written}`"]))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from sft.export import ExportError, export_run

    began = time.perf_counter()
    try:
        written = export_run(args.run_dir, args.format, args.quant, args.out)
    except ExportError as error:
        print(f"tunebot: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"export: done in {time.perf_counter() - began:.1f} s")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from tunebot.runs import compare_runs, find_run, list_runs, runs_table

    runs_dir = Path(args.runs_dir)
    if args.compare:
        print(compare_runs(*(find_run(runs_dir, name) for name in args.compare)))
    else:
        print(runs_table(list_runs(runs_dir)))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from tunebot.models import check_cache, default_model_dir, ensure_default_model

    if not args.check:
        ensure_default_model(rebuild=args.rebuild)
    status = check_cache(default_model_dir())
    size = f"{status.size_bytes / 1e6:.0f} MB" if status.size_bytes else "-"
    print(f"default  SmolLM2-135M-Instruct  {status.reason}  {size}  {status.path}")
    return 0 if status.ok else 1


def _cmd_score(args: argparse.Namespace) -> int:
    from eval.scoring import format_scores_table, score_files

    try:
        scores = score_files(args.pred, args.ref, args.lang)
    except ValueError as error:  # unreadable or mismatched files: say which, no traceback
        print(f"tunebot: error: {error}", file=sys.stderr)
        return 2
    # every metric of eval/registry.py (null where undefined, e.g. key_facts without facts) and its tokenizer
    if args.json:
        metrics = {key: None if value is None else round(value, 4) for key, value in scores.values.items()}
        print(json.dumps({"metrics": metrics, "tokenizers": scores.tokenizers, "langs": scores.langs},
                         ensure_ascii=False))
    else:
        print(format_scores_table({Path(args.pred).name: scores}))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from serve.server import serve_command

    return serve_command(args)


def _cmd_ui(args: argparse.Namespace) -> int:
    from serve.ui_remote import ui_command

    return ui_command(args)


def _cmd_feedback(args: argparse.Namespace) -> int:
    from serve.feedback import FeedbackError, export_preferences

    run_dir = Path(args.run_dir)
    source = run_dir / "serve" / "feedback.jsonl"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no feedback yet (votes from `tunebot serve {run_dir} --ui`)")
    out = Path(args.out) if args.out else run_dir / "serve" / "preferences.jsonl"
    try:
        summary = export_preferences(source, out)
    except FeedbackError as error:
        print(f"tunebot: error: {error}", file=sys.stderr)
        return 2
    for bad in summary.malformed[:20]:
        print(f"feedback: {source}: line {bad.line}: skipped: {bad.reason}", file=sys.stderr)
    if len(summary.malformed) > 20:
        print(f"feedback: ... and {len(summary.malformed) - 20} more malformed lines skipped", file=sys.stderr)
    print(f"feedback: {summary.pairs} preference pairs -> {out}; left out: {summary.ties} ties, {summary.both_bad} "
          f"both bad, {summary.replaced} replaced by a later vote of the same session, {summary.contradictory} "
          f"contradictory answer pairs, {summary.ratings} thumbs ratings, {len(summary.malformed)} malformed lines")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; known failures print one clear line and exit 2, not a traceback."""
    args = build_parser().parse_args(argv)
    handlers = {"demo": _cmd_run, "run": _cmd_run, "init": _cmd_init, "models": _cmd_models, "score": _cmd_score,
                "serve": _cmd_serve, "ui": _cmd_ui, "feedback": _cmd_feedback, "runs": _cmd_runs,
                "export": _cmd_export}
    handler = handlers.get(args.command, _cmd_stage)
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("tunebot: interrupted; finished stages are kept, run the same command to resume", file=sys.stderr)
        return 130
    except (TunebotError, FileNotFoundError) as error:
        print(f"tunebot: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
