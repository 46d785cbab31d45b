"""Every evaluated system behind the gateway: the serving prompt equals the eval prompt for rag and
tuned_rag, retrieval answers without a model, responses carry the retrieved ids, and the serving
index holds every kept record (train, val and test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import serving

from serve.engine_hf import TransformersEngine
from serve.gateway import GatewaySettings, create_app
from serve.systems import SystemRouter, index_records
from tunebot.cli import main
from tunebot.config import load_config
from tunebot.prompts import answer_of, question_of, render_prompt
from tunebot.rundir import RunDir, read_jsonl

SYSTEMS = "eval.systems=[retrieval,base,rag,tuned,tuned_rag]"


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, RunDir]:
    import yaml

    from conftest import write_faq_files

    folder = tmp_path_factory.mktemp("served")
    en, ja = write_faq_files(folder / "data")
    raw = {"name": "served", "model": str(tiny_model_dir), "system_prompt": "S", "runs_dir": str(folder / "runs"),
           "data": {"sources": [{"path": str(en)}, {"path": str(ja)}], "split": {"val": 0.2, "test": 0.3, "seed": 0}},
           "retrieval": {"k": 2, "min_coverage": 0.0},
           "sft": {"max_steps": 2, "batch_size": 2, "lora_r": 4, "lora_alpha": 8},
           "eval": {"backend": "hf", "max_new_tokens": 4, "bootstrap_resamples": 100, "permutations": 100,
                    "forgetting_probe": False}}
    config = folder / "served.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    for command in (["data"], ["train"], ["eval", "--set", SYSTEMS]):
        assert main([command[0], str(config), *command[1:]]) == 0
    cfg = load_config(config)
    return config, RunDir(Path(cfg.runs_dir) / cfg.name)


def test_serving_prompt_equals_eval_prompt(evaluated_run: tuple[Path, RunDir], tiny_model_dir: Path) -> None:
    config, run_dir = evaluated_run
    cfg = load_config(config)
    engine = TransformersEngine(str(tiny_model_dir), run_dir.path("sft", "adapter"), max_model_len=512)
    # eval searched the training split: the same index gives the same prompt through serving's path
    router = SystemRouter(engine, list(read_jsonl(run_dir.path("data", "train.jsonl"))), cfg.retrieval)
    test = {record["id"]: record for record in read_jsonl(run_dir.path("data", "test.jsonl"))}
    rows = [row for row in read_jsonl(run_dir.path("eval", "predictions.jsonl")) if row["set"] == "test"]
    compared = 0
    for row in rows:
        plan = router.plan(row["system"], test[row["id"]]["prompt"])
        assert plan.retrieved == row.get("retrieved", [])
        if row["system"] in ("rag", "tuned_rag"):
            assert render_prompt(engine.tokenizer, plan.messages) == row["prompt"]
            assert plan.model == ("tuned" if row["system"] == "tuned_rag" else "base")
            compared += 1
        if row["system"] == "retrieval":
            assert plan.model is None and plan.answer == row["prediction"]
    assert compared == 2 * len(test)


def test_the_serving_index_holds_every_kept_record(evaluated_run: tuple[Path, RunDir]) -> None:
    _, run_dir = evaluated_run
    records, counts = index_records(run_dir.root)
    assert counts["val"] > 0 and counts["test"] > 0
    assert len(records) == sum(counts.values())
    test_record = next(iter(read_jsonl(run_dir.path("data", "test.jsonl"))))
    router = SystemRouter(None, records)
    plan = router.plan("retrieval", test_record["prompt"])
    assert plan.answer == answer_of(test_record) and plan.retrieved == [test_record["id"]]  # held-out answers too


@pytest.fixture(scope="module")
def server(evaluated_run: tuple[Path, RunDir], tiny_model_dir: Path) -> Iterator[tuple[str, list[dict]]]:
    config, run_dir = evaluated_run
    cfg = load_config(config)
    engine = TransformersEngine(str(tiny_model_dir), run_dir.path("sft", "adapter"), max_model_len=512)
    records, _ = index_records(run_dir.root)
    router = SystemRouter(engine, records, cfg.retrieval)
    app = create_app(router, GatewaySettings(system_prompt="S", max_model_len=512, default_max_tokens=6))
    with serving(app) as url:
        yield url, records


def test_every_system_answers_through_the_api(server: tuple[str, list[dict]]) -> None:
    url, records = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=60)
    assert [m.id for m in client.models.list().data] == ["retrieval", "base", "rag", "tuned", "tuned_rag"]
    record = records[0]
    messages = [{"role": "user", "content": question_of(record)}]
    found = client.chat.completions.create(model="retrieval", messages=messages)
    assert found.choices[0].message.content == answer_of(record)
    assert found.model_extra["tunebot"] == {"system": "retrieval", "retrieved": [record["id"]]}
    rag = client.chat.completions.create(model="rag", messages=messages, max_tokens=4)
    assert rag.model_extra["tunebot"]["system"] == "rag" and record["id"] in rag.model_extra["tunebot"]["retrieved"]
    plain = client.chat.completions.create(model="tuned", messages=messages, max_tokens=4)
    assert plain.model_extra["tunebot"] == {"system": "tuned", "retrieved": []}
    chunks = list(client.chat.completions.create(model="retrieval", messages=messages, stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == answer_of(record)
    assert chunks[0].model_extra["tunebot"]["retrieved"] == [record["id"]]
    fallback = client.chat.completions.create(model="retrieval",
                                              messages=[{"role": "user", "content": "zebra quantum"}])
    assert "FAQ" in fallback.choices[0].message.content and fallback.model_extra["tunebot"]["retrieved"] == []
