"""The Python SDK for trustgate-gateway plugins.

A plugin is a program the gateway starts; it calls serve() with its hooks:

    import trustgate_plugin as tp

    def on_request(request):          # a tp.Request
        if b"rm -rf" in request.body:
            return tp.block("shell command in prompt")
        return tp.allow()

    tp.serve(on_request=on_request)

Each hook takes the message (Request or Response, see hooks.proto) and
returns a Verdict: allow(), block(reason) or rewrite(body). A hook that is
not given allows everything. A Verdict without an action (Verdict(), whose
action is ACTION_UNSPECIFIED) is refused by the gateway like a failed call:
it never lets anything through. A hook that raises, or returns something that is
not a Verdict, fails that call with a gRPC INTERNAL error (which the gateway
treats as a failed plugin); the plugin keeps serving.

serve() speaks hashicorp/go-plugin's protocol: it serves gRPC on a Unix
socket in a fresh private directory and prints the handshake line
"1|1|unix|<socket>|grpc" on standard output. It prints no TLS certificate
(go-plugin's AutoMTLS is not implemented here): the gateway accepts that only
on a socket inside the private directory it made for the plugin
($PLUGIN_UNIX_SOCKET_DIR). After the handshake, standard output is redirected
to standard error, which the gateway logs. Stdlib, grpc and google.protobuf
only.
"""

import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from concurrent import futures

import grpc

from . import hooks_pb2

__all__ = ["Request", "Response", "Verdict", "allow", "block", "rewrite", "serve"]

Request = hooks_pb2.Request
Response = hooks_pb2.Response
Verdict = hooks_pb2.Verdict

# The go-plugin handshake; must match plugin.Handshake in Go. The cookie is
# not a secret: it only tells a program that a gateway started it.
MAGIC_COOKIE_KEY = "TRUSTGATE_PLUGIN"
MAGIC_COOKIE_VALUE = "7c1f9e4a2b6d8053e1a4c7f2d9b0e6a3"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 1

# Bounds one gRPC message either way; must match plugin.MaxMessageSize.
MAX_MESSAGE_SIZE = 64 << 20

# SERVING (1) in field 1 of grpc.health.v1.HealthCheckResponse.
_HEALTH_SERVING = b"\x08\x01"


def allow(reason=""):
    """Pass the request or response on unchanged."""
    return Verdict(action=Verdict.ALLOW, reason=reason)


def block(reason):
    """Stop the request or response. The gateway logs reason and may show it
    to the client."""
    return Verdict(action=Verdict.BLOCK, reason=reason)


def rewrite(body):
    """Replace the body with body (bytes, not empty)."""
    return Verdict(action=Verdict.REWRITE, body=body)


def _clip(text, limit=300):
    return text if len(text) <= limit else text[:limit] + "..."


def _hook_handler(name, request_type, hook):
    def handle(request, context):
        if hook is None:
            return allow()
        try:
            verdict = hook(request)
        except BaseException as exc:  # noqa: B902 - a hook must never end the plugin
            traceback.print_exc(file=sys.stderr)
            context.abort(grpc.StatusCode.INTERNAL,
                          _clip("%s raised %s: %s" % (name, type(exc).__name__, exc)))
        if not isinstance(verdict, Verdict):
            context.abort(grpc.StatusCode.INTERNAL,
                          "%s returned %s, not a Verdict" % (name, type(verdict).__name__))
        return verdict

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=Verdict.SerializeToString,
    )


def _raw_handler(fn):
    # No (de)serializers: the handler gets and returns raw bytes.
    return grpc.unary_unary_rpc_method_handler(fn)


def serve(on_request=None, on_response=None):
    """Serve the hooks to the gateway that started this process, until the
    gateway shuts the plugin down. Exits with status 1 when not started by a
    gateway."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This program is a trustgate-gateway plugin: the gateway starts it,\n"
            "it is not meant to be run by hand (%s is not set).\n" % MAGIC_COOKIE_KEY)
        sys.exit(1)

    # Interrupts (Ctrl-C in the gateway's terminal) are for the gateway,
    # which shuts its plugins down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    done = threading.Event()

    def shutdown(_request, _context):
        done.set()
        return b""  # plugin.Empty

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
            ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
        ],
    )
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("trustgate.plugin.v1.Hooks", {
            "OnRequest": _hook_handler("OnRequest", Request, on_request),
            "OnResponse": _hook_handler("OnResponse", Response, on_response),
        }),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": _raw_handler(lambda _request, _context: _HEALTH_SERVING),
        }),
        # go-plugin's host calls this when it kills the plugin.
        grpc.method_handlers_generic_handler("plugin.GRPCController", {
            "Shutdown": _raw_handler(shutdown),
        }),
    ))

    # mkdtemp makes the directory with mode 0700.
    sock_dir = tempfile.mkdtemp(prefix="tgp-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    try:
        sock = os.path.join(sock_dir, "plugin.sock")
        if server.add_insecure_port("unix:" + sock) == 0:
            raise RuntimeError("cannot listen on unix socket %s" % sock)
        server.start()
        sys.stdout.write("%d|%d|unix|%s|grpc\n" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, sock))
        sys.stdout.flush()
        sys.stdout = sys.stderr
        done.wait()
        server.stop(grace=1).wait()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
