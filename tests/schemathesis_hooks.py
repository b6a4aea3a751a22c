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
   problem+json of the service's own). Such a request is sent again, up to `RETRIES` times;
   an answer that stays the router's fault still fails the run. The number of resent requests
   is printed at the end of each pass, so a router that gets worse shows.
"""

import atexit
import sys

import requests
import schemathesis

ROUTER_FAULT = b'{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}'
RETRIES = 2
resent = 0


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


_send = requests.Session.send


def send(self, request, **kwargs):
    global resent
    response = _send(self, request, **kwargs)
    for _ in range(RETRIES):
        if not router_fault(response):
            break
        resent += 1
        print(f"schemathesis: the local router's own 500 for {request.method} {request.url}; sent again", file=sys.stderr)
        response = _send(self, request, **kwargs)
    return response


requests.Session.send = send


@atexit.register
def report():
    print(f"schemathesis: requests sent again after the local router's own 500: {resent}", file=sys.stderr)
