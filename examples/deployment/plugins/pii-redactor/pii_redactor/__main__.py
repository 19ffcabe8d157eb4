"""Reads a chat request as JSON on stdin and writes it back redacted."""

import json
import sys

from pii_redactor import redact


def main() -> None:
    request = json.load(sys.stdin)
    for message in request.get("messages", []):
        if isinstance(message.get("content"), str):
            message["content"] = redact(message["content"])
    json.dump(request, sys.stdout)


if __name__ == "__main__":
    main()
