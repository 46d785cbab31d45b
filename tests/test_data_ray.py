"""data.engine: ray on a local 2-node Ray cluster gives the local engine's outputs, record for record."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from data_tools.stage import run_data_stage
from tunebot.config import parse_config
from tunebot.rundir import RunDir

ray = pytest.importorskip("ray", reason="data.engine: ray needs tunebot[scale]")

OUTPUTS = ("train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl", "report.json")


def _inputs(folder: Path) -> list[Path]:
    """An FAQ CSV and a support log with exact and near duplicates, personal data and bad rows."""
    rng = random.Random(3)
    topics = ("返品", "配送", "ポイント", "refund", "shipping", "password", "invoice", "coupon")
    lines = ["question,answer,category"]
    for index in range(400):
        topic = topics[index % len(topics)]
        question = f"{topic}について質問です {index % 150} ({rng.choice(['急ぎ', 'please', ''])})"
        answer = f"{topic} の手続きは {index % 150} 番の窓口へ。 mail: user{index % 9}@example.com"
        lines.append(f'"{question}","{answer}",{topic}')
        if index % 37 == 0:
            lines.append(f'"{question}!","",{topic}')  # empty answer
    faq = folder / "faq.csv"
    faq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = folder / "tickets.jsonl"
    with open(log, "w", encoding="utf-8") as handle:
        for index in range(60):
            messages = [{"role": "customer",
                         "content": f"Order {index % 20} has not arrived, call 090-1234-{index:04d}"},
                        {"role": "agent", "content": f"Order {index % 20} ships tomorrow from the Osaka depot."}]
            handle.write(json.dumps({"id": index, "messages": messages}) + "\n")
        handle.write("{broken\n")
    return [faq, log]


def _run(folder: Path, sources: list[Path], **data: object) -> dict[str, str]:
    kinds = ("faq", "support_log")
    cfg = parse_config({"name": "r",
                        "data": {"sources": [{"path": str(path), "kind": kind} for path, kind in zip(sources, kinds)],
                                              **data}})
    run_dir = RunDir(folder / "r")
    run_data_stage(cfg, run_dir)
    return {name: run_dir.path("data", name).read_text(encoding="utf-8") for name in OUTPUTS}


def test_a_two_node_ray_cluster_gives_the_local_engines_outputs(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import data_tools.stage
    from ray.cluster_utils import Cluster

    monkeypatch.setattr(data_tools.stage, "SHARD_UNITS", 50)  # 11 shards over two nodes
    monkeypatch.setattr(data_tools.stage, "IN_PROCESS_BYTES", 0)
    sources = _inputs(tmp_path)
    local = _run(tmp_path / "local", sources, workers=2)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        on_ray = _run(tmp_path / "ray", sources, engine="ray", ray_address=cluster.address)
        nodes = [node for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")]
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert on_ray == local
    assert len(nodes) == 2  # a task per CPU: each node ran some
    report = json.loads(local["report.json"])
    assert report["duplicates"]["exact"] > 0 and report["duplicates"]["near"] > 0 and report["pii"]["found"]
    assert all(source["rows_in"] == source["kept"] + source["rejected"] for source in report["sources"])
