"""Example guardrail plugin: redacts e-mail addresses and card numbers."""

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
CARD = re.compile(r"\b(?:\d[ -]?){13,16}\b")


def redact(text: str) -> str:
    return CARD.sub("[card]", EMAIL.sub("[email]", text))
