"""The OpenAI chat-completions request the gateway accepts, and its error shape.

    python -c "from serve.protocol import ChatRequest; print(ChatRequest(model='base', messages=[{'role': 'user', 'content': 'hi'}]))"

Unknown extra fields that OpenAI clients send (user, metadata, ...) are ignored; fields whose
meaning the engines cannot honour (n > 1, tools) are refused with a 400 instead of being ignored.
Message content may be a string or OpenAI's list of {"type": "text", "text": ...} parts (Gradio 6
sends the latter); both become one string.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TOKENS_LIMIT = 4096


class ChatMessage(BaseModel):
    """One message: role and text content."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        if isinstance(value, list):  # [{"type": "text", "text": "..."}]
            texts = [part.get("text", "") for part in value if isinstance(part, dict) and part.get("type", "text") == "text"]
            return "".join(texts)
        return value


class ChatRequest(BaseModel):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1, description="Only one choice per request.")

    @field_validator("messages")
    @classmethod
    def _has_a_question(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if value[-1].role != "user":
            raise ValueError("the last message must be the user's")
        if not value[-1].content.strip():
            raise ValueError("the last user message is empty")
        return value

    def limit(self, default: int) -> int:
        """The answer's token budget: max_completion_tokens, else max_tokens, else `default`."""
        return self.max_completion_tokens or self.max_tokens or default


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
