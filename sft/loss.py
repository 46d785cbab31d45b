"""The training loss on CPU: padding-free, with the LM head applied to the answer positions only.

TRL's SFTTrainer computes its loss with a chunked log-prob kernel. On Triton devices (CUDA) it
projects only the positions that have a label; elsewhere it projects every position, prompt and
padding included, recomputes the chunks in the backward pass, and also works out each position's
entropy and top-1 hit for its entropy and mean_token_accuracy metrics. On the default 135M model
the LM head is a fifth of the model's weights (49,152 x 576), so on CPU that is most of the gap to
a plain Trainer (bench/train.py --peer llamafactory; README, Training speed).

Here, on CPU in a single process, the loss is the textbook one on the answer tokens only, computed
without padding:
- the batch's sequences are laid end to end in one row (the padding left out), each with its own
  positions, and attention runs per sequence (`varlen_sdpa`: PyTorch's SDPA, causal, on each
  sequence's slice), so no token is computed for padding and no sequence sees another. The batches
  are TRL's own (same examples, same order, same truncation); this is the layout of TRL's
  `padding_free` (packing's batches come that way and take the same attention), which with SDPA
  alone would cost one block-diagonal mask over the whole row per batch. On the demo's job the
  padded batches were 16.8% padding; without it the step ran 1.29x the real tokens/s (one
  interleaved micro-benchmark, 12 steps each);
- the backbone's hidden states at the positions whose next token is labelled go through one LM-head
  matmul, then cross entropy summed over them and divided by the batch's labelled-token count (what
  TRL divides by, so the loss and its gradients are the same).
The token count for tokens/s (num_tokens) is kept, and mean_token_accuracy comes from the same logits
(an argmax). Entropy is not logged. CUDA, data parallel runs, loss variants (dft, label smoothing, a
custom loss) and prompt / prefix tuning (whose virtual tokens PeftModel's own forward adds) keep TRL's
own path.
"""

from __future__ import annotations

from typing import Any

VARLEN = "tunebot_varlen_sdpa"


def varlen_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Attention for transformers' attention interface: in a padding-free row (sequence bounds in
    `cu_seq_lens_q`), causal attention within each sequence, PyTorch's SDPA on each one's slice;
    any other batch goes to transformers' own SDPA with its mask."""
    import torch

    if kwargs.get("cu_seq_lens_q") is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    bounds = kwargs["cu_seq_lens_q"].tolist()
    groups = getattr(module, "num_key_value_groups", 1)
    parts = [torch.nn.functional.scaled_dot_product_attention(
        query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], dropout_p=dropout, is_causal=True,
        scale=scaling, enable_gqa=groups > 1) for start, end in zip(bounds, bounds[1:])]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def use_per_sequence_attention(model: Any) -> None:
    """Makes `varlen_sdpa` the model's attention (SDPA's masks for everything else). Kept for the whole
    training run, since gradient checkpointing runs the forward again in the backward pass; the
    setting is not saved with the model (transformers leaves it out of config.json)."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(VARLEN, varlen_sdpa)
    AttentionMaskInterface.register(VARLEN, sdpa_mask)
    model.config._attn_implementation = VARLEN


def padding_free(inputs: dict[str, Any]) -> dict[str, Any]:
    """Returns the batch as one row without padding: input_ids, labels (none at a sequence's first token),
    position_ids and the sequences' bounds (cu_seq_lens_q). A batch already padding-free (packing) is kept."""
    import torch

    if "cu_seq_lens_q" in inputs:
        return inputs
    mask = inputs["attention_mask"].bool()
    lengths = mask.sum(1)
    bounds = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)]).to(torch.int32)
    positions = torch.arange(int(bounds[-1])) - torch.repeat_interleave(bounds[:-1], lengths)
    labels = inputs["labels"][mask].clone()
    labels[positions == 0] = -100  # a sequence's first token is not the previous sequence's next token
    return {"input_ids": inputs["input_ids"][mask][None], "labels": labels[None], "position_ids": positions[None],
            "cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds}


def completion_loss(backbone: Any, head: Any, inputs: dict[str, Any], num_items: Any) -> tuple[Any, Any, Any]:
    """Returns (loss, labelled positions, top-1 hits) of a causal LM batch, padding-free, projecting only
    labelled positions; the backbone's attention must be `varlen_sdpa` (use_per_sequence_attention)."""
    import torch

    row = padding_free(inputs)
    features = {key: row[key] for key in ("input_ids", "position_ids", "cu_seq_lens_q", "cu_seq_lens_k")}
    hidden = backbone(**features, use_cache=False).last_hidden_state[:, :-1]
    targets = row["labels"][:, 1:]
    mask = targets != -100
    logits = head(hidden[mask]).float()
    picked = targets[mask]
    total = torch.nn.functional.cross_entropy(logits, picked, reduction="sum")
    count = mask.sum() if num_items is None else torch.as_tensor(num_items, device=total.device)
    hits = (logits.detach().argmax(-1) == picked).sum()
    return total / count.clamp(min=1), mask.sum(), hits


def sft_trainer_class() -> type:
    """SFTTrainer whose loss, on CPU in one process, is `completion_loss` (TRL's own elsewhere)."""
    from trl import SFTTrainer

    class AnswerLossSFTTrainer(SFTTrainer):
        """TRL's SFTTrainer, on CPU with the padding-free answer-only loss (module docstring) and with malloc
        keeping freed memory while it trains (sft/allocator.py)."""

        def _compact_loss_applies(self, model: Any) -> bool:
            args = self.args
            config = getattr(model, "active_peft_config", None)
            virtual_tokens = config is not None and config.is_prompt_learning  # added by PeftModel's own forward
            return (args.device.type == "cpu" and self.accelerator.num_processes == 1 and args.loss_type == "nll"
                    and self.compute_loss_func is None and self.label_smoother is None and not self.aux_loss_enabled
                    and not virtual_tokens)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self._compact_loss_applies(self.model):
                causal = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
                use_per_sequence_attention(causal)

        def train(self, *args: Any, **kwargs: Any) -> Any:
            from sft.allocator import keep_freed_memory

            with keep_freed_memory(self.args.device.type == "cpu"):
                return super().train(*args, **kwargs)

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if return_outputs or not self._compact_loss_applies(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            causal = model.get_base_model() if hasattr(model, "get_base_model") else model
            backbone = getattr(causal, causal.base_model_prefix)
            loss, labelled, hits = completion_loss(backbone, causal.get_output_embeddings(), inputs, num_items_in_batch)
            self._count(inputs, int(labelled), int(hits))
            return loss

        def _count(self, inputs: dict, labelled: int, hits: int) -> None:
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["mean_token_accuracy"].append(hits / labelled if labelled else 0.0)
            if mode == "train":  # real (non-padding) tokens, as TRL counts them for num_tokens
                mask = inputs.get("attention_mask")
                self._total_train_tokens += int(mask.sum()) if mask is not None else int(inputs["position_ids"].size(1))
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return AnswerLossSFTTrainer
