"""Benchmark of abuse: 32 normal clients are served while another client attacks the same gateway.

    .venv/bin/python bench/serve_abuse.py                    # ~4 minutes on the 2-core CPU (vLLM engine)
    .venv/bin/python bench/serve_abuse.py --engine transformers --json bench/results/serve-abuse.json

The gateway (tunebot's, with the default model, retrieval over the ACME demo FAQ) runs in a child
process; this process is the clients. Normal traffic: 32 concurrent clients, 3 requests each,
greedy, 32 new tokens, to base and rag in turn. At the same time the attacker sends 10 MB bodies
(refused: serve.max_body_mb is 4), 3 MB prompts (parsed, then too long), streams of 1,500 tokens
it abandons after a few chunks, and 500 requests naming made-up 200-character models; /health is
polled every 100 ms throughout. Printed: normal clients' errors and p50/p99, /health p99, the
gateway process's RSS growth (after a warm-up, to the end) and /metrics size. Targets (issue 17):
0 errors for the normal clients, /health p99 < 1 s, RSS growth < 50 MB, /metrics < 1 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTIONS = ["How much is shipping?", "返品できますか？", "Can I change my delivery address?", "領収書は出せますか？",
             "How do I reset my password?", "営業時間を教えてください。", "Do you ship abroad?",
                 "ポイントの有効期限は？"]


def _serve(engine_kind: str, port: int) -> None:
    """The child: the gateway over the default model and the demo FAQ, until killed."""
    import uvicorn

    from serve.gateway import GatewaySettings, create_app
    from serve.systems import SystemRouter
    from tunebot.config_eval import RetrievalConfig
    from tunebot.models import resolve_model
    from tunebot.prompts import make_record

    model = resolve_model("default")
    if engine_kind == "vllm":
        from serve.engine_vllm import VllmEngines, start_engine, wait_healthy

        process = start_engine("base", model, Path("/tmp/tunebot-bench-abuse"), 2048, 2)
        wait_healthy([process])
        engine: Any = VllmEngines([process], model)
    else:
        from serve.engine_hf import TransformersEngine

        engine = TransformersEngine(model, None)
    faq = [json.loads(line) for line in (ROOT / "examples" / "data" / "acme_faq_en.jsonl").read_text().splitlines()]
    records = [make_record(f"faq-{n}", f"faq:{n}", "en", "S", row["question"], row["answer"])
               for n, row in enumerate(faq)]
    app = create_app(SystemRouter(engine, records, RetrievalConfig(k=1)),
                     GatewaySettings("You are ACME support.", None, 2048, 32))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def _normal(client: Any, url: str, clients: int, rounds: int) -> dict[str, Any]:
    latencies, errors = [], []

    async def one(number: int) -> None:
        for turn in range(rounds):
            body = {"model": ("base", "rag")[(number + turn) % 2], "max_tokens": 32, "temperature": 0,
                    "messages": [{"role": "user", "content": QUESTIONS[(number + turn) % len(QUESTIONS)]}]}
            began = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/chat/completions", json=body, timeout=600)
                if response.status_code != 200:
                    errors.append(response.status_code)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                errors.append(type(error).__name__)
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(number) for number in range(clients)))
    return {"requests": clients * rounds, "errors": len(errors), "error_kinds": sorted(map(str, set(errors))),
            "p50_s": round(_p(latencies, 0.5), 3), "p99_s": round(_p(latencies, 0.99), 3)}


async def _health(client: Any, url: str, stop: asyncio.Event) -> list[float]:
    latencies = []
    while not stop.is_set():
        began = time.perf_counter()
        await client.get(f"{url}/health", timeout=30)
        latencies.append(time.perf_counter() - began)
        await asyncio.sleep(0.1)
    return latencies


async def _attack(client: Any, url: str) -> dict[str, int]:
    """Oversized bodies, huge prompts, abandoned streams and made-up model names."""
    import random

    statuses: dict[str, int] = {}

    def seen(kind: str, status: Any) -> None:
        statuses[f"{kind} {status}"] = statuses.get(f"{kind} {status}", 0) + 1

    huge = json.dumps({"model": "base", "messages": [{"role": "user", "content": "x" * 10_000_000}]})
    big = json.dumps({"model": "rag", "messages": [{"role": "user", "content": "返品 " * 400_000}]}, ensure_ascii=False)
    for _ in range(5):
        for kind, body in (("10 MB body", huge), ("3 MB prompt", big)):
            response = await client.post(f"{url}/v1/chat/completions", content=body.encode(), timeout=120,
                                         headers={"Content-Type": "application/json"})
            seen(kind, response.status_code)
    for _ in range(20):
        body = {"model": "base", "max_tokens": 1500, "stream": True,
                "messages": [{"role": "user", "content": "Tell a story."}]}
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as response:
            lines = 0
            async for _ in response.aiter_lines():
                lines += 1
                if lines > 6:
                    break
        seen("abandoned stream", response.status_code)
    rng = random.Random(0)
    for _ in range(500):
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(200))
        response = await client.post(f"{url}/v1/chat/completions", timeout=60,
                                     json={"model": name, "messages": [{"role": "user", "content": "hi"}]})
        seen("made-up model", response.status_code)
    return statuses


async def _run(url: str, pid: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:
        await _normal(client, url, 8, 1)  # warm-up
        rss_before = _rss_mb(pid)
        stop = asyncio.Event()
        health = asyncio.create_task(_health(client, url, stop))
        attack = asyncio.create_task(_attack(client, url))
        normal = await _normal(client, url, 32, 3)
        statuses = await attack
        stop.set()
        pauses = await health
        metrics = await client.get(f"{url}/metrics")
    return {"normal": normal, "attack": statuses, "health_p99_s": round(_p(pauses, 0.99), 3),
            "health_max_s": round(max(pauses), 3), "health_polls": len(pauses),
            "rss_growth_mb": round(_rss_mb(pid) - rss_before, 1), "metrics_bytes": len(metrics.content)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["vllm", "transformers"], default=None,
                        help="default: vllm where installed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import httpx

    from tunebot.vllm_proc import vllm_installed
    from serve.threaded import free_port

    engine = args.engine or ("vllm" if vllm_installed() else "transformers")
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(engine, port), daemon=True)
    child.start()
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 600
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not child.is_alive():
            raise SystemExit("the gateway did not start")
        time.sleep(1)
    try:
        found = asyncio.run(_run(url, child.pid))
    finally:
        child.terminate()
        child.join(30)
    normal = found["normal"]
    print(f"engine {engine}; normal clients: {normal['requests']} requests, {normal['errors']} errors "
          f"{normal['error_kinds'] or ''}, p50 {normal['p50_s']} s, p99 {normal['p99_s']} s")
    print(f"/health p99 {found['health_p99_s']} s (max {found['health_max_s']} s, {found['health_polls']} polls); "
          f"RSS growth {found['rss_growth_mb']} MB; /metrics {found['metrics_bytes']} bytes")
    for outcome, count in sorted(found["attack"].items()):
        print(f"  attack: {outcome}: {count}")
    verdict = {"normal errors 0": normal["errors"] == 0, "/health p99 < 1 s": found["health_p99_s"] < 1,
               "RSS growth < 50 MB": found["rss_growth_mb"] < 50, "/metrics < 1 MB": found["metrics_bytes"] < 2**20}
    print("targets: " + ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in verdict.items()))
    if args.json:
        args.json.write_text(json.dumps({"date": date.today().isoformat(), "machine": platform.machine(),
                                         "engine": engine, **found, "targets": verdict}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
