"""Event-stream clients that ask and then never read, and a writer that makes events for them.

Run inside the sidecar's network namespace (the test gives it small TCP buffers, so the kernel
holds little for a client and what a client does not read piles up in the sidecar, unless the
sidecar caps it). Speaks over stdin/stdout, one line each way:
  -> "ready 503" once every client has its response (503: what one client more got)
  <- "go"      -> "toggled" after TOGGLES automation changes (two events each to every client),
                  then "fresh S": what a new client gets once they are done
Usage: stalled-sse-clients.py PORT TOKEN CLIENTS TOGGLES
"""

import http.client
import json
import socket
import sys

port, token, count, toggles = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
auth = {"Authorization": f"Bearer {token}"}


def events_client() -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    s.sendall(request.encode())
    return s, s.recv(1024)


def status_of(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "none"


clients = []
for _ in range(count):
    s, head = events_client()
    if status_of(head) != "200":
        sys.exit(f"the event stream answered {head[:40]!r}")
    clients.append(s)
extra, head = events_client()
extra.close()
print("ready", status_of(head), flush=True)

sys.stdin.readline()
api = http.client.HTTPConnection("127.0.0.1", port)
for i in range(toggles):
    body = json.dumps({"maintenance": i % 2 == 0})
    headers = {**auth, "Content-Type": "application/json"}
    try:
        api.request("PUT", "/api/v1/automation", body, headers)
        api.getresponse().read()
    except (ConnectionResetError, http.client.RemoteDisconnected):
        # A kept-alive connection the server closed meanwhile: a new one, as any client does.
        api = http.client.HTTPConnection("127.0.0.1", port)
        api.request("PUT", "/api/v1/automation", body, headers)
        api.getresponse().read()
print("toggled", flush=True)

fresh, head = events_client()
fresh.close()
print("fresh", status_of(head), flush=True)
