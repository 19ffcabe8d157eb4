"""Serves the redactor to trustgate-gateway (python3 -m pii_redactor)."""

import trustgate_plugin as tp

from pii_redactor import redact_request, redact_response


def on_request(request):
    body = redact_request(request.body)
    return tp.allow() if body is None else tp.rewrite(body)


def on_response(response):
    body = redact_response(response.body, response.stream_event)
    return tp.allow() if body is None else tp.rewrite(body)


def main() -> None:
    tp.serve(on_request=on_request, on_response=on_response)


if __name__ == "__main__":
    main()
