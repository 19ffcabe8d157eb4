"""Example transform plugin: redacts e-mail addresses and card numbers.

Requests: every message's content (a string, or the text of its parts) in
the JSON request body. Responses: choices[].message.content of a whole
answer, choices[].delta.content of each event (chunk) of a streamed one (an
address split across two events is not seen).
"""

import json
import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
CARD = re.compile(r"\b(?:\d[ -]?){13,16}\b")


def redact(text: str) -> str:
    return CARD.sub("[card]", EMAIL.sub("[email]", text))


def _redact_content(holder: dict) -> bool:
    """Redacts holder["content"] in place; returns whether it changed."""
    content = holder.get("content")
    changed = False
    if isinstance(content, str):
        holder["content"] = redact(content)
        changed = holder["content"] != content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                text = part["text"]
                part["text"] = redact(text)
                changed = changed or part["text"] != text
    return changed


def redact_request(body: bytes):
    """Returns the redacted request body, or None when nothing changed."""
    request = json.loads(body)
    changed = False
    for message in request.get("messages") or []:
        if isinstance(message, dict):
            changed = _redact_content(message) or changed
    return json.dumps(request).encode() if changed else None


def _redact_answer(answer: dict, key: str) -> bool:
    changed = False
    for choice in answer.get("choices") or []:
        if isinstance(choice, dict) and isinstance(choice.get(key), dict):
            changed = _redact_content(choice[key]) or changed
    return changed


def redact_response(body: bytes, stream_event: bool):
    """Returns the redacted answer body (or stream event data), or None when
    nothing changed."""
    answer = json.loads(body)
    key = "delta" if stream_event else "message"
    return json.dumps(answer).encode() if _redact_answer(answer, key) else None
