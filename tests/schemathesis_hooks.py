"""schemathesis hooks for tests/schemathesis.sh.

`make run` serves the functions through cargo lambda watch's router. Two of its own limits
would otherwise show up as failures of the service, so they are handled here, narrowly:

1. It cannot carry a request body that is not UTF-8 to a function: it answers such a request
   with its own text/plain 500 before the function sees it. (Deployed, API Gateway
   base64-encodes it, and the functions refuse it with a 400 or 415 problem: tests/api cover
   that.) Generated bodies of that kind test the local router, not the service, so they are
   left out.

2. Rarely (once in several thousand requests in CI), the router loses a function's answer and
   sends its own 500 instead: `text/plain`, with the body `ROUTER_FAULT` below, which no
   function of this service ever sends (every answer of theirs is JSON, and every error a
   problem+json of the service's own). Such a request is sent again, up to `RETRIES` times,
   only if sending it again cannot change anything the first one did: a GET, HEAD or OPTIONS,
   or a write carrying an `Idempotency-Key` (create and roll, which answer a repeat with the
   first answer). A write without one is never sent again: its router 500 stays, and fails
   the run. At most `MAX_RESENDS` (3) requests are sent again in one pass of
   tests/schemathesis.sh; one more router 500 fails the run, with the count, rather than be
   resent, so a router that gets worse cannot hide behind retries. An answer that stays the
   router's fault after its retries also fails the run. The count is printed at the end of
   each pass.

   Where the lost answers come from (cargo-lambda 1.9.2, crates/cargo-lambda-watch; read,
   not yet reproduced): the router answers a function's `POST .../response` at once, before
   reading its body, and hands that body to the client's request, which reads it only then
   (trigger_router.rs, create_buffered_response). If the function's HTTP client, having its
   200, stops sending the rest of a body that did not fit in one write, that read fails and
   the router answers `ServerError` (error.rs: this 500 and body), while the function logged
   the request as served. The same 500 follows if the function's `GET .../next` is dropped
   between the router taking the request from its queue and filing the answer's channel
   (functions_router.rs, process_next_request). If the first holds, the lost answers are the
   longer ones (list pages), which a count by operation of the resent requests would show.
   The folder the router watches is not the cause: it runs in an empty one (tools/run.sh).
"""

import atexit
import sys

import requests
import schemathesis

ROUTER_FAULT = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'
RETRIES = 2
MAX_RESENDS = 3
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
resent = 0


class RouterFaults(Exception):
    """More router 500s in one pass than MAX_RESENDS: the run fails rather than resend more."""


@schemathesis.hook("filter_body")
def filter_body(ctx, body):
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def router_fault(response):
    return (
        response.status_code == 500
        and response.headers.get("content-type", "").startswith("text/plain")
        and response.content == ROUTER_FAULT
    )


def may_resend(request):
    return request.method.upper() in SAFE_METHODS or "Idempotency-Key" in request.headers


_send = requests.Session.send


def send(self, request, **kwargs):
    global resent
    response = _send(self, request, **kwargs)
    for _ in range(RETRIES):
        if not router_fault(response) or not may_resend(request):
            break
        if resent >= MAX_RESENDS:
            raise RouterFaults(
                f"the local router's own 500 for {request.method} {request.url}, after {resent} "
                f"requests already sent again in this pass (at most {MAX_RESENDS}): not sent again"
            )
        resent += 1
        print(f"schemathesis: the local router's own 500 for {request.method} {request.url}; sent again", file=sys.stderr)
        response = _send(self, request, **kwargs)
    return response


requests.Session.send = send


@atexit.register
def report():
    print(f"schemathesis: requests sent again after the local router's own 500: {resent} (at most {MAX_RESENDS} a pass)", file=sys.stderr)
