"""A python-socketio server (5.x on aiohttp), the third implementation volley-client's tests
run against, next to the official Node server and Volley.

    python3 client_server.py <port> <pingInterval ms> <pingTimeout ms>

<port> 0 picks a free port. Prints {"event":"listening","port":N} on stdout once it listens,
then runs until killed (or until its stdin closes, so that it never outlives the test that
started it). Exits with status 3 and a message on stderr when python-socketio or aiohttp is
missing (scripts/install-deps.sh installs them).

Behaviour in /, /admin, /secure and /early (as e2e/interop/scripts/client-server.mjs):
  "echo"      emits "echo" back with the same arguments (binary included)
  "ack"       acknowledges with the same arguments
  "ask"       call("question", ...) to the client (30 s timeout), then emits "answer" with
              the client's reply
  "collect"   appends its first argument to a server-wide list (acknowledged with true)
  "collected" acknowledges with that list
  "auths"     acknowledges with the auth objects of every connection to "/" so far
  "kick"      disconnects the socket (the client sees "io server disconnect")
  "handshake" acknowledges with {"query": query.q, "header": the x-volley-test header}
  "flaky"     counts how often it saw its first argument; acknowledges with that count only
              from the second time on
/secure refuses connections whose auth.token is not "ok": message "not authorized",
data {"code": 42}.
/early emits, from its connect handler, "early" 1, "early" 2 and "early" b"\\x01\\x02\\x03"
(binary): python-socketio writes them before the namespace's CONNECT answer.
"""

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs

try:
    import socketio
    from aiohttp import web
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        f"client_server.py: {e}; install python-socketio and aiohttp "
        "(scripts/install-deps.sh)\n"
    )
    sys.exit(3)


class _WholeBody:
    """A request body whose read(n) returns all n bytes.

    python-engineio 4.15 reads a long-polling POST with aiohttp's `content.read(length)`,
    which returns whatever part of the body has arrived: on a busy machine a large POST (the
    tests send a 100 kB attachment, 133 kB of base64) comes in several TCP segments and the
    server decodes a truncated payload ("Incorrect padding"). That is the test server's bug,
    not the client's: read the whole body, as every other server does."""

    def __init__(self, content):
        self._content = content

    async def read(self, length=-1):
        if length is None or length < 0:
            return await self._content.read()
        return await self._content.readexactly(length)


def _patch_body_reads():
    from engineio.async_drivers import aiohttp as eio_aiohttp

    translate = eio_aiohttp._async["translate_request"]

    def translate_request(request):
        environ = translate(request)
        environ["wsgi.input"] = _WholeBody(request.content)
        return environ

    eio_aiohttp._async["translate_request"] = translate_request


_patch_body_reads()

port, ping_interval, ping_timeout = (int(a) for a in sys.argv[1:4])

sio = socketio.AsyncServer(
    async_mode="aiohttp",
    ping_interval=(ping_interval or 25000) / 1000,
    ping_timeout=(ping_timeout or 20000) / 1000,
    max_http_buffer_size=10_000_000,
    cors_allowed_origins="*",
    logger=bool(os.environ.get("VOLLEY_PY_LOG")),
    engineio_logger=bool(os.environ.get("VOLLEY_PY_LOG")),
)
app = web.Application()
sio.attach(app)

collected = []
auths = []
seen = {}


def behave(ns):
    @sio.on("echo", namespace=ns)
    async def echo(sid, *args):
        await sio.emit("echo", args, to=sid, namespace=ns)

    @sio.on("ack", namespace=ns)
    async def ack(sid, *args):
        return args

    @sio.on("ask", namespace=ns)
    async def ask(sid, *args):
        try:
            reply = await sio.call("question", args, to=sid, namespace=ns, timeout=30)
            await sio.emit("answer", reply, to=sid, namespace=ns)
        except Exception as e:  # noqa: BLE001
            await sio.emit("answer", {"error": str(e)}, to=sid, namespace=ns)

    @sio.on("collect", namespace=ns)
    async def collect(sid, *args):
        collected.append(args[0] if args else None)
        return True

    @sio.on("collected", namespace=ns)
    async def collected_(sid, *args):
        return collected

    @sio.on("auths", namespace=ns)
    async def auths_(sid, *args):
        return auths

    @sio.on("handshake", namespace=ns)
    async def handshake(sid, *args):
        environ = sio.get_environ(sid, namespace=ns) or {}
        query = parse_qs(environ.get("QUERY_STRING", ""))
        q = query.get("q", [None])[0]
        return {"query": q, "header": environ.get("HTTP_X_VOLLEY_TEST")}

    @sio.on("flaky", namespace=ns)
    async def flaky(sid, key=None, *args):
        seen[key] = seen.get(key, 0) + 1
        n = seen[key]
        collected.append(key)
        if n < 2:
            # python-socketio answers every acknowledged event when its handler returns:
            # never return (the task ends with the connection).
            await asyncio.Event().wait()
        return n

    @sio.on("kick", namespace=ns)
    async def kick(sid, *args):
        await sio.disconnect(sid, namespace=ns)


for ns in ("/", "/admin", "/secure", "/early"):
    behave(ns)


@sio.on("connect", namespace="/")
async def connect_root(sid, environ, auth):
    auths.append(auth)


@sio.on("connect", namespace="/secure")
async def connect_secure(sid, environ, auth):
    if not (isinstance(auth, dict) and auth.get("token") == "ok"):
        raise socketio.exceptions.ConnectionRefusedError("not authorized", {"code": 42})


@sio.on("connect", namespace="/early")
async def connect_early(sid, environ, auth):
    await sio.emit("early", 1, to=sid, namespace="/early")
    await sio.emit("early", 2, to=sid, namespace="/early")
    await sio.emit("early", b"\x01\x02\x03", to=sid, namespace="/early")


async def main():
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    actual = site._server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"event": "listening", "port": actual}) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    os._exit(0)


asyncio.run(main())
