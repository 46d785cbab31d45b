"""The OpenAI chat-completions request the gateway accepts, and its error shape: validated by construction.

    python -c "from serve.protocol import *; \\
        print(parse_request(b'{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'))"

One strict model describes every field the gateway honours; anything else is refused:
- a field the model does not declare (tools, tool_choice, response_format, logprobs, functions,
  logit_bias, ...) is a 400 "unsupported parameter" naming it, never silently ignored;
- types are strict (JSON "8" is not the integer 8, 1 is not true), integers are range-checked
  (seed is an int64, max_tokens 1-4096), n must be 1, `stop` is up to 4 strings;
- every string must be valid Unicode (a lone surrogate is a 400) and is length-limited.
`user` and `metadata` are accepted (they describe the caller, not the answer) and not used.
Message content is a string or OpenAI's list of {"type": "text", "text": ...} parts (Gradio
sends the latter); other part types (images, audio) are refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

MAX_TOKENS_LIMIT = 4096
INT64 = 2**63
MAX_STOP = 4
MAX_NAME = 256  # model names, stop strings, user ids: short by nature


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"not valid Unicode (a lone surrogate at character {error.start})") from None
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_valid_unicode)]


class TextPart(BaseModel):
    """One part of a message's content list: only text."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    """One message: role and text content."""

    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["system", "user", "assistant"]
    content: Text | list[TextPart]
    name: Name | None = None

    @property
    def text(self) -> str:
        """The content as one string."""
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class ChatRequest(BaseModel):
    """POST /v1/chat/completions: every field tunebot honours, strictly typed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    model: Name
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    stream: bool = False
    stop: Name | list[Name] | None = None
    n: Literal[1] = 1
    user: Name | None = None
    metadata: dict[Name, Text] | None = None

    def stops(self) -> list[str]:
        """The stop sequences as a list (at most 4)."""
        return [] if self.stop is None else [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def limit(self, default: int) -> int:
        """The answer's token budget: max_completion_tokens, else max_tokens, else `default`."""
        return self.max_completion_tokens or self.max_tokens or default

    def conversation(self) -> list[dict[str, str]]:
        """The messages as {role, content} dicts."""
        return [{"role": message.role, "content": message.text} for message in self.messages]


class RequestError(ValueError):
    """A request that cannot be served: the message (never echoing unbounded input) and the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


_UNION_TAGS = re.compile(r"^(?:[\w-]+\[.*\]|str|constrained-str|int|float|bool|none|list|dict)$")


def _where(error: dict[str, Any]) -> str:
    """The field path of an error, without pydantic's union-member tags: messages.0.content.1.type."""
    return ".".join(str(part) for part in error.get("loc", ())
                    if not (isinstance(part, str) and _UNION_TAGS.match(part)))


def _problem(errors: list[dict[str, Any]]) -> RequestError:
    """The 400 of pydantic's errors: what is wrong, and where (of a union's members, the deepest error)."""
    error = max(errors, key=lambda found: len(_where(found).split(".")) if _where(found) else 0)
    kind = error.get("type", "")
    if kind == "json_invalid":
        detail = str(error.get("ctx", {}).get("error", error.get("msg")))
        lone = "escape" in detail or "surrogate" in detail
        hint = " (a \\u escape of a lone surrogate is not valid Unicode)" if lone else ""
        return RequestError(f"malformed JSON body: {detail}{hint}")
    where = _where(error)
    if kind == "extra_forbidden":
        return RequestError(f"unsupported parameter {where!r}: tunebot does not implement it (remove it from the "
                            "request)", where)
    if kind in ("model_type", "model_attributes_type") and not where:
        return RequestError("the request body must be a JSON object")
    return RequestError(f"{where}: {error.get('msg', 'invalid value')}", where or None)


def parse_request(body: bytes) -> ChatRequest:
    """Parses and validates a request body; raises RequestError naming the first bad field."""
    try:
        request = ChatRequest.model_validate_json(body)
    except ValidationError as error:
        raise _problem(error.errors(include_url=False, include_input=False)) from None
    last = request.messages[-1]
    if last.role != "user":
        raise RequestError("the last message must be the user's", "messages")
    if not last.text.strip():
        raise RequestError("the last user message is empty", "messages")
    if len(request.stops()) > MAX_STOP:
        raise RequestError(f"stop: at most {MAX_STOP} sequences", "stop")
    return request


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error JSON: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> Any:
    """An OpenAI-style error response."""
    from fastapi.responses import JSONResponse

    return JSONResponse(error_body(message, kind, param), status_code=status, headers=headers)
