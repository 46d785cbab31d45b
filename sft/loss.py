"""The training loss on CPU: the LM head applied to the answer positions only, with no per-step extras.

TRL's SFTTrainer computes its loss with a chunked log-prob kernel. On Triton devices (CUDA) it
projects only the positions that have a label; elsewhere it projects every position, prompt and
padding included, recomputes the chunks in the backward pass, and also works out each position's
entropy and top-1 hit for its entropy and mean_token_accuracy metrics. On the default 135M model
the LM head is a fifth of the model's weights (49,152 x 576), so on CPU that is most of the gap to
a plain Trainer (bench/train.py --peer llamafactory; README, Training speed).

Here, on CPU in a single process, the loss is the textbook one on the answer tokens only: the
backbone's hidden states at the positions whose next token is labelled, one LM-head matmul, cross
entropy summed over them and divided by the batch's labelled-token count (what TRL divides by, so
the loss and its gradients are the same). The token count for tokens/s (num_tokens) is kept, and
mean_token_accuracy comes from the same logits (an argmax). Entropy is not logged. CUDA, data
parallel runs, loss variants (dft, label smoothing, a custom loss) and prompt / prefix tuning (whose
virtual tokens PeftModel's own forward adds) keep TRL's own path.
"""

from __future__ import annotations

from typing import Any


def completion_loss(backbone: Any, head: Any, inputs: dict[str, Any], num_items: Any) -> tuple[Any, Any, Any]:
    """Returns (loss, labelled positions, top-1 hits) of a causal LM batch, projecting only labelled positions."""
    import torch

    features = {key: value for key, value in inputs.items() if key != "labels"}
    hidden = backbone(**features, use_cache=False).last_hidden_state[:, :-1]
    targets = inputs["labels"][:, 1:]
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
        """TRL's SFTTrainer with the answer-only LM-head loss on CPU (module docstring)."""

        def _compact_loss_applies(self, model: Any) -> bool:
            args = self.args
            config = getattr(model, "active_peft_config", None)
            virtual_tokens = config is not None and config.is_prompt_learning  # added by PeftModel's own forward
            return (args.device.type == "cpu" and self.accelerator.num_processes == 1 and args.loss_type == "nll"
                    and self.compute_loss_func is None and self.label_smoother is None and not self.aux_loss_enabled
                    and not virtual_tokens)

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
