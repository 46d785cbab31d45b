"""The one typed run configuration: YAML in, `RunConfig` out, parsed once and passed down.

    tunebot run examples/acme.yaml --set sft.lr=1e-4 --set eval.max_new_tokens=64

Every field is described once here; `extra="forbid"` turns a misspelled key into an error that
names its key path (`sft.lrr: unknown key`), never a silent default.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from tunebot.config_eval import EndpointConfig, EvalConfig, RetrievalConfig, ServeConfig
from tunebot.errors import TunebotError
from tunebot.section import Section
from pydantic import Field, ValidationError, field_validator, model_validator


_SHORT_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


class ConfigError(TunebotError, ValueError):
    """A config file or override that cannot be turned into a `RunConfig`."""


def _check_regex(pattern: str, label: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{label}: not a valid regular expression ({error})") from None


_Section = Section


class SourceConfig(_Section):
    """One input file (or glob) and how to read it."""

    path: str = Field(description="File path or glob, relative to the config file's folder.")
    kind: Literal["faq", "support_log"] = Field(
        "faq",
        description="faq = question/answer pairs; support_log = conversations (JSONL messages, CSV ticket "
        "exports, text transcripts): each agent turn becomes a record with the earlier turns as prompt.",
    )
    format: Literal["auto", "csv", "tsv", "jsonl", "json", "xlsx", "markdown", "transcript"] = Field(
        "auto", description="File format; auto = from the extension (.txt/.log = transcript)."
    )
    sheet: str | None = Field(None, description="Worksheet of an .xlsx file; None = the first one.")
    held_out: bool = Field(
        True, description="false = every record of this source trains, none goes to val/test (e.g. support logs "
        "used as training material while the FAQ's phrasings measure the bot)."
    )
    header_row: int | None = Field(
        None, ge=1, description="Row number of an .xlsx file's header; None = found below any title rows."
    )
    encoding: str | None = Field(
        None, description="Text encoding; None = detect (UTF-8 with or without BOM, UTF-16 with BOM, CP932/Shift_JIS, "
                          "EUC-JP)."
    )
    question_field: str | None = Field(
        None, description="Column/key holding the question; None = detect from common names."
    )
    answer_field: str | None = Field(
        None, description="Column/key holding the answer; None = detect from common names."
    )
    category_field: str | None = Field(
        None, description="Column/key of the category kept on records (split strata; eval.answer_class=category); "
        "None = detect (category, カテゴリ, ...)."
    )
    agent_roles: list[str] = Field(
        [], description="support_log: extra speaker/role names of the company's side (agent, 担当, ... are known)."
    )
    customer_roles: list[str] = Field(
        [], description="support_log: extra speaker/role names of the customer's side (customer, 顧客, ... are known)."
    )
    skip_roles: list[str] = Field(
        [], description="support_log: extra speaker/role names whose messages are skipped (bots, auto-replies, system)."
    )
    ticket_fields: dict[Literal["ticket", "time", "role", "body", "public", "name"], str] = Field(
        {}, description="support_log CSV: the column of each part of a message, where the names are not the common "
        "ones (Zendesk's 'Comment author role' and 'Comment body' are known), e.g. {role: Sender type}. "
        "`public`: a column whose false/no/0 marks an internal note; `name`: the author's name (a customer's is "
        "redacted "
        "wherever it occurs)."
    )


class SplitConfig(_Section):
    """How records are divided into train/val/test."""

    val: float = Field(0.1, ge=0.0, lt=1.0, description="Share of records for validation.")
    test: float = Field(0.1, ge=0.0, lt=1.0, description="Share of records for the test split.")
    seed: int = Field(0, description="Seed of the deterministic split.")

    @model_validator(mode="after")
    def _leaves_training_data(self) -> "SplitConfig":
        if self.val + self.test >= 0.9:
            raise ValueError(f"val + test = {self.val + self.test:.2f} leaves too little to train on")
        return self


class AugmentEndpoint(EndpointConfig):
    """An OpenAI-compatible model that writes question variants (data.augment.endpoint)."""

    model: str = Field(description="Served model name.")


class AugmentConfig(_Section):
    """Question paraphrases added to the training split (never to val or test)."""

    variants: int = Field(0, ge=0, le=20, description="Variants per training question; 0 = off.")
    seed: int = Field(0, description="Seed of the rules' choices.")
    endpoint: AugmentEndpoint | None = Field(None, description="Optional model writing the variants (rules fill in).")


class DataConfig(_Section):
    """Inputs and how they become instruction records."""

    sources: list[SourceConfig] = Field(min_length=1, description="Input files, read in order.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train/val/test split.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="Question paraphrases for training.")
    min_question_chars: int = Field(2, ge=1, description="Shorter questions are rejected.")
    min_answer_chars: int = Field(2, ge=1, description="Shorter answers are rejected.")
    max_chars: int = Field(8000, ge=16, description="Longer questions or answers are rejected.")
    near_duplicate_threshold: float = Field(
        0.9, gt=0, le=1,
            description="Pairs whose question and answer are this similar (char 3-gram Jaccard) are duplicates."
    )
    leakage_threshold: float = Field(
        0.6, gt=0, le=1, description="Questions this similar are kept in the same split, so none leaks into test."
    )
    html_to_text: bool = Field(True, description="Turn HTML in questions and answers into plain text.")
    unicode: Literal["nfkc-ja", "nfkc", "nfc", "none"] = Field(
        "nfkc-ja",
        description="Unicode normalization of the text: nfkc-ja = NFKC (full-width letters/digits to ASCII, "
        "half-width kana to full-width) but Japanese full-width punctuation ！？（）：；～ kept as written; "
        "nfkc; nfc; none = as written. Template placeholders ({{Order Number}}) are never changed.",
    )
    non_answer_filter: bool = Field(
        True, description="Reject answers that answer nothing (N/A, TBD, 'let me check', 少々お待ちください, ...)."
    )
    non_answer_patterns: list[str] = Field(
        [], description="Extra regexes of non-answers, matched against the whole answer (case-folded, trimmed)."
    )
    workers: int | None = Field(
        None, ge=1, description="Processes (local engine) or CPUs (ray) the data stage's tasks run on; None = the CPU "
        "count, at most 4. Inputs under 4 MB run in one process. Never changes the output or its fingerprint.",
    )
    engine: Literal["local", "ray"] = Field(
        "local", description="What runs the data stage's tasks: local = this machine's processes; ray = a Ray cluster "
        "(`pip install 'tunebot[scale]'`, see README 'Data at scale'). Never changes the output.",
    )
    ray_address: str | None = Field(
        None, description="engine: ray: the cluster to join (ray://host:10001, or auto); None = start one on this "
                          "machine."
    )
    max_context_turns: int = Field(
        8, ge=1, description="support_log: earlier messages kept in a record's prompt (older ones are left out)."
    )
    answer_boilerplate: list[str] = Field(
        [],
        description="Regexes removed from answers, e.g. greetings and signatures of agent replies "
        "('^お問い合わせありがとうございます。', '(?s)Best regards,.*$').",
    )
    pii: Literal["redact", "drop", "keep"] = Field(
        "redact",
        description="Personal data: redact = typed placeholders ([EMAIL], [PHONE], ...), drop = reject the row, keep.",
    )
    pii_ner: Literal["off", "ginza"] = Field(
        "off",
        description="A named-entity model run after the PII rules, for names and addresses they cannot see: "
        "ginza = GiNZA's Japanese NER (`pip install 'tunebot[ner-ja]'`, ~100 texts/s). See data_tools/pii_ner.py.",
    )
    pii_allow: list[str] = Field(
        [], description="Exact strings never treated as personal data, e.g. the company's own support address."
    )
    pii_patterns: dict[str, str] = Field(
        {}, description="Extra personal data to find, NAME: regex (e.g. order ids); replaced by [NAME]."
    )

    @field_validator("answer_boilerplate", "non_answer_patterns")
    @classmethod
    def _boilerplate_compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _check_regex(pattern, repr(pattern))
        return value

    @field_validator("pii_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r}: names are letters, digits and _ (they become [NAME])")
            _check_regex(pattern, name)
        return value


class SftConfig(_Section):
    """Fine-tuning with TRL's SFTTrainer and PEFT."""

    method: Literal["auto", "lora", "qlora", "dora", "ia3", "prompt", "prefix", "freeze", "full"] = Field(
        "auto",
        description="auto = QLoRA on CUDA (with bitsandbytes), LoRA otherwise; lora; qlora (4-bit NF4 base, "
        "double quantization, bf16 compute; CUDA only); dora (weight-decomposed LoRA); ia3 (learned scaling of "
        "keys, values and MLP output); prompt (prompt tuning: learned virtual tokens); prefix (prefix tuning: "
        "learned keys/values in every layer); freeze (train only the last `freeze_train_layers` blocks, the "
        "final norm and the head); full (every weight).",
    )
    num_virtual_tokens: int = Field(20, ge=1, le=512, description="Virtual tokens learned by prompt/prefix tuning.")
    prompt_init: Literal["text", "random"] = Field(
        "text", description="Prompt tuning starts from the system prompt's token embeddings (text) or random ones."
    )
    freeze_train_layers: int = Field(
        2, ge=1, description="freeze: how many of the last transformer blocks are trained (with final norm and head)."
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training split.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps; -1 = epochs decide.")
    lr: float = Field(2.0e-4, gt=0, description="Peak learning rate.")
    batch_size: int = Field(4, ge=1, description="Sequences per device per step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    max_length: int | Literal["auto"] = Field(
        "auto", description="Longest tokenized example (prompt + answer); auto = the longest training example, "
        "rounded up to 64 tokens, at most max_length_cap. Longer ones are truncated, and counted (sft/DONE)."
    )
    max_length_cap: int = Field(2048, ge=64, description="The most tokens max_length=auto may choose.")
    max_lost_share: float = Field(
        0.02, ge=0, le=1, description="Stop before training when more than this share of the examples would be "
        "truncated or dropped (no answer token left) at max_length."
    )
    # retrieved by default: bench/quality.py measured tuned_rag right on 57% of the demo's test questions
    # after grounded training against 14% after plain LoRA (README, "Which recipe trains the best bot")
    context: Literal["none", "retrieved"] = Field(
        "retrieved", description="retrieved = grounded training (RAFT): each prompt carries the retrieval.k pairs "
        "the retriever returns from the other training pairs, as the rag systems' prompts do in eval and serve; "
        "none = the plain prompt."
    )
    context_negatives: float = Field(
        0.2, ge=0, le=1, description="sft.context=retrieved: share of examples whose retrieved pairs hold no pair "
        "with the record's answer (the target stays the answer)."
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (alpha / r scales the update).")
    # 0 by default: on CPU the dropout masks cost ~40% of the forward pass (measured on the
    # default model, batch 8), and on a few hundred FAQ pairs it buys nothing measurable.
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get adapters; all-linear = every linear layer but the head."
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming up the lr.")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="lr schedule.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    packing: bool = Field(False, description="Pack several short examples into one sequence.")
    group_by_length: bool = Field(
        True, description="Batch examples of similar length together (less padding, same data per epoch)."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations to save memory (slower; useful for long sequences on GPU)."
    )
    liger: bool = Field(
        False, description="Liger's Triton kernels for RMSNorm, SwiGLU and RoPE (CUDA only; pip install "
        "'tunebot[gpu]'): less activation memory; whether it is faster depends on the model and GPU (bench/train.py "
        "--gpu). TRL's own fused LM head stays.")
    logging_steps: int = Field(5, ge=1, description="Log loss every N steps.")
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate on the val split (and checkpoint) every N steps; None = every epoch."
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many evaluations without a lower val loss; None = never stop early."
    )
    keep_checkpoints: int = Field(2, ge=1,
                                  description="Checkpoints kept in sft/checkpoints (the best one is never deleted).")
    seed: int = Field(0, description="Seed for initialisation and data order.")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch; None = all cores.")
    report_to: Literal["none", "tensorboard", "mlflow", "trackio"] = Field(
        "none", description="Experiment tracking of training and eval scores, offline by default: tensorboard "
        "(RUN_DIR/sft/tensorboard), mlflow (a file store in RUNS_DIR/mlruns) or trackio (RUNS_DIR/trackio). "
        "See tunebot/tracking.py.")
    tracking_uri: str | None = Field(
        None, description="Where tracking goes instead: a TensorBoard log folder, or an MLflow tracking URI (a server "
        "only if you give one).")


class TuneConfig(_Section):
    """Hyper-parameter search (`tunebot tune`) with Optuna; each trial trains with sft + the sampled values."""

    trials: int = Field(8, ge=1, description="Trials to run (a re-run adds only the missing ones).")
    sampler: Literal["tpe", "grid"] = Field("tpe", description="tpe (Bayesian, ranges) or grid (every combination).")
    lr: tuple[float, float] = Field((2.0e-5, 2.0e-3), description="Learning-rate range (log scale; grid: 3 points).")
    lora_r: list[int] = Field([4, 8, 16, 32], min_length=1, description="LoRA ranks to try.")
    alpha_over_r: list[float] = Field([1.0, 2.0], min_length=1, description="lora_alpha = r x this; values to try.")
    lora_dropout: tuple[float, float] = Field((0.0, 0.1), description="LoRA dropout range (grid: both ends).")
    epochs: list[float] = Field([1.0, 2.0, 3.0], min_length=1, description="Epoch counts to try.")
    max_steps: int | None = Field(None, ge=1, description="Cap on each trial's steps (short trials); None = epochs.")
    eval_steps: int = Field(10, ge=1, description="Val loss is measured (and bad trials pruned) every N steps.")
    pruning: bool = Field(True, description="Stop trials whose val loss is worse than the median at the same step.")
    seed: int = Field(0, description="Sampler seed.")

    @field_validator("lr", "lora_dropout")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError(f"must be [low, high] with 0 <= low <= high, got {list(value)}")
        return value


class RunConfig(_Section):
    """A whole run: which model, which data, and how each stage behaves."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Run name = folder under runs_dir.")
    model: str = Field("default", description="default (bundled SmolLM2-135M-Instruct), a local path or an HF id.")
    system_prompt: str = Field(
        "You are a helpful customer-support assistant.",
        min_length=1,
        description="System message used in training, evaluation and serving alike.",
    )
    runs_dir: str = Field("runs", description="Folder holding run directories, relative to the working directory.")
    data: DataConfig = Field(description="Input files and record building.")
    sft: SftConfig = Field(default_factory=SftConfig, description="Fine-tuning.")
    tune: TuneConfig = Field(default_factory=TuneConfig, description="Hyper-parameter search.")
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig, description="Retrieval of training pairs.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="Serving.")

    @field_validator("system_prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    def fingerprint(self, stage: str) -> str:
        """Returns a short hash of the config fields a stage's output depends on.

        A finished stage whose fingerprint still matches is skipped by `tunebot run`;
        any change upstream (data, prompt, model, training) changes it.

        >>> cfg.fingerprint("sft")   # doctest: +SKIP
        '3f2a9c01d4e5'
        """
        dumped = self.model_dump(mode="json")
        for name in TRACKING_FIELDS:  # where curves are logged changes no stage's output
            dumped["sft"].pop(name, None)
        for name in EXECUTION_FIELDS:
            dumped["data"].pop(name, None)
        chosen = {name: dumped[name] for name in STAGE_INPUTS[stage]}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]


TRACKING_FIELDS = ("report_to", "tracking_uri")
EXECUTION_FIELDS = ("workers", "engine", "ray_address")  # how the data stage runs, never what it writes
# The config fields each stage's output depends on (directly or through earlier stages).
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "data": ("data", "system_prompt"),
    "sft": ("data", "system_prompt", "model", "sft", "retrieval"),
    "merged": ("data", "system_prompt", "model", "sft", "retrieval"),
    "eval": ("data", "system_prompt", "model", "sft", "retrieval", "eval"),
    "tune": ("data", "system_prompt", "model", "sft", "retrieval", "tune"),
}


def _format_errors(error: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid config"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)


def _step(node: Any, part: str, path: str, assignment: str, create: bool) -> tuple[Any, Any]:
    """Returns (container, key) for one path segment; list items are addressed by index."""
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(f"--set {assignment!r}: {path} has {len(node)} items, no item {part!r}")
        return node, int(part)
    if not isinstance(node, dict):
        raise ConfigError(f"--set {assignment!r}: {path} is not a section")
    if create:
        node.setdefault(part, {})
    return node, part


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Applies one `a.b=value` override to a raw config dict; the value is parsed as YAML.

    List items are addressed by index: `data.sources.0.path=faq.csv`.

    >>> raw = {"sft": {"lr": 1}}; apply_override(raw, "sft.lr=1e-4"); raw["sft"]["lr"]
    0.0001
    """
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY.PATH=VALUE")
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        container, index = _step(node, part, ".".join(parts[:depth]) or "(top level)", assignment, create=True)
        node = container[index]
    container, index = _step(node, parts[-1], ".".join(parts[:-1]) or "(top level)", assignment, create=False)
    parsed = yaml.safe_load(value) if value.strip() else ""
    # YAML 1.1 reads 1e-4 as a string (it wants 1.0e-4); users type it the short way.
    if isinstance(parsed, str) and _SHORT_FLOAT.match(parsed):
        parsed = float(parsed)
    container[index] = parsed


def parse_config(raw: dict[str, Any], origin: str = "config") -> RunConfig:
    """Validates a raw dict into a `RunConfig`; errors name every bad key path.

    >>> parse_config({"name": "x", "data": {"sources": [{"path": "faq.csv"}]}}).sft.lr
    0.0002
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, origin)) from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Reads a YAML config, applies `--set` overrides and validates it.

    Relative source paths are resolved against the config file's folder, so a config can be
    run from anywhere.

    >>> load_config("examples/acme.yaml", ["sft.epochs=1"]).sft.epochs   # doctest: +SKIP
    1.0
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    for assignment in overrides:
        apply_override(raw, assignment)
    cfg = parse_config(raw, origin=str(path))
    base = path.resolve().parent
    for source in cfg.data.sources:
        if not Path(source.path).is_absolute():
            source.path = str(base / source.path)
    cfg.eval.questions = [name if Path(name).is_absolute() else str(base / name) for name in cfg.eval.questions]
    # A model given as a path next to the config is found from anywhere; an HF id is left alone.
    if cfg.model != "default" and not Path(cfg.model).is_absolute() and (base / cfg.model).exists():
        cfg.model = str(base / cfg.model)
    return cfg


def dump_config(cfg: RunConfig) -> str:
    """Returns the resolved config as YAML with every default filled in."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False)
