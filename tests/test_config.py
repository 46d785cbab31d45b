"""Config validation: every example validates, unknown keys and bad values name their key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunebot.config import ConfigError, apply_override, dump_config, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent
MINIMAL = {"name": "t", "data": {"sources": [{"path": "faq.csv"}]}}


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name
    for source in cfg.data.sources:
        assert Path(source.path).is_absolute()


def test_examples_exist() -> None:
    assert list((REPO / "examples").glob("*.yaml")), "examples/ must ship at least one config"


def test_defaults_are_filled() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.model == "default"
    assert cfg.sft.lr == pytest.approx(2e-4)
    assert cfg.eval.systems == ["retrieval", "base", "tuned", "rag", "tuned_rag"] and cfg.eval.backend == "auto"
    assert cfg.sft.context == "retrieved" and cfg.sft.max_length == "auto" and cfg.retrieval.k == "auto"
    assert cfg.data.split.test == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"sft": {"lrr": 1}}, "sft.lrr: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"data": {"sources": [{"path": "x", "kinds": "faq"}]}}, "data.sources.0.kinds: unknown key"),
        ({"sft": {"lr": -1}}, "sft.lr:"),
        ({"eval": {"systems": ["base", "gpt9"]}}, "eval.systems.1:"),
        ({"name": "bad name/with slash"}, "name:"),
        ({"data": {"sources": []}}, "data.sources:"),
        ({"data": {"sources": [{"path": "x"}], "split": {"val": 0.5, "test": 0.45}}}, "data.split:"),
    ],
)
def test_errors_name_the_key_path(patch: dict, message: str) -> None:
    raw = {**MINIMAL, **patch}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, origin="my.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("my.yaml: invalid config")


def test_missing_required_field() -> None:
    with pytest.raises(ConfigError, match="data: Field required"):
        parse_config({"name": "x"})


def test_overrides_parse_values_as_yaml() -> None:
    raw: dict = {"sft": {"lr": 1.0}}
    apply_override(raw, "sft.lr=1e-4")
    apply_override(raw, "sft.epochs=2")
    apply_override(raw, "sft.target_modules=[q_proj, v_proj]")
    apply_override(raw, "eval.max_new_tokens=64")
    apply_override(raw, "system_prompt=丁寧に答えてください。")
    assert raw["sft"] == {"lr": 1e-4, "epochs": 2, "target_modules": ["q_proj", "v_proj"]}
    assert raw["eval"]["max_new_tokens"] == 64
    assert raw["system_prompt"] == "丁寧に答えてください。"


def test_overrides_address_list_items() -> None:
    raw: dict = {"data": {"sources": [{"path": "a.csv"}, {"path": "b.csv"}]}}
    apply_override(raw, "data.sources.1.path=/data/real.csv")
    assert raw["data"]["sources"][1] == {"path": "/data/real.csv"}
    with pytest.raises(ConfigError, match="data.sources has 2 items, no item '5'"):
        apply_override(raw, "data.sources.5.path=x")


@pytest.mark.parametrize("bad", ["sft.lr", "=3", "sft.lr.x=1"])
def test_bad_overrides_are_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        apply_override({"sft": {"lr": 1}}, bad)


def test_load_config_applies_overrides_and_resolves_paths(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text("question,answer\nq,a\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")
    cfg = load_config(path, ["sft.epochs=1", "eval.lang=ja"])
    assert cfg.sft.epochs == 1.0 and cfg.eval.lang == "ja"
    assert cfg.data.sources[0].path == str(tmp_path / "faq.csv")
    with pytest.raises(ConfigError, match="sft.epochz: unknown key"):
        load_config(path, ["sft.epochz=1"])


def test_resolved_config_round_trips() -> None:
    cfg = parse_config({**MINIMAL, "system_prompt": "あなたはサポート担当です。"})
    again = parse_config(yaml.safe_load(dump_config(cfg)))
    assert again == cfg
    assert "あなたはサポート担当です。" in dump_config(cfg)


def test_unreadable_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    cp932 = tmp_path / "sjis.yaml"
    cp932.write_bytes("name: テスト\n".encode("cp932"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(cp932)


def test_fingerprint_tracks_upstream_changes() -> None:
    cfg = parse_config(MINIMAL)
    changed_eval = parse_config({**MINIMAL, "eval": {"max_new_tokens": 7}})
    changed_data = parse_config({**MINIMAL, "system_prompt": "other"})
    assert cfg.fingerprint("sft") == changed_eval.fingerprint("sft")
    assert cfg.fingerprint("eval") != changed_eval.fingerprint("eval")
    assert cfg.fingerprint("sft") != changed_data.fingerprint("sft")


def test_eval_section_refuses_inconsistent_settings() -> None:
    with pytest.raises(ConfigError, match="eval.openai.url"):
        parse_config({**MINIMAL, "eval": {"backend": "openai"}})
    with pytest.raises(ConfigError, match="must not repeat"):
        parse_config({**MINIMAL, "eval": {"systems": ["base", "base"]}})
    with pytest.raises(ConfigError, match="eval.systems"):
        parse_config({**MINIMAL, "eval": {"systems": ["gpt"]}})
    cfg = parse_config({**MINIMAL, "eval": {"backend": "openai", "openai": {"url": "http://127.0.0.1:8000/v1"},
                                            "judge": {"url": "http://127.0.0.1:9000/v1", "model": "judge"}}})
    assert cfg.eval.openai.tuned_model == "tuned" and cfg.eval.judge.rubric.startswith("You grade")
