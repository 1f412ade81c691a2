"""Connect to ADDRESS PORT once and print what happened: open | refused | blocked | error N.

'refused' means the firewall let the SYN through to a port nobody listens on; 'blocked' means
it was dropped (timeout) or rejected with host-unreachable. Run on a lab host by the tests and
by prepare.yml.
"""

import socket
import sys

s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("blocked")
except OSError as exc:
    print("blocked" if exc.errno == 113 else f"error {exc.errno}")
