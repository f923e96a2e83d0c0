"""snmptrapd trap handler: appends each trap as one JSON line to the file named by argv[1].

snmptrapd hands a handler the sending host, the transport, then one "OID VALUE" line per varbind
(names as decoded with the MIBs snmptrapd loaded). The lab's tests read the JSON lines.
"""

import datetime
import fcntl
import json
import sys


def main():
    lines = sys.stdin.read().splitlines()
    host = lines[0] if lines else ""
    transport = lines[1] if len(lines) > 1 else ""
    varbinds = []
    for line in lines[2:]:
        oid, _, value = line.partition(" ")
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"')
        varbinds.append({"oid": oid, "value": value})
    trap_oid = next((v["value"] for v in varbinds if v["oid"].startswith(("SNMPv2-MIB::snmpTrapOID", ".1.3.6.1.6.3.1.1.4.1"))), None)
    record = {
        "received": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "host": host,
        "transport": transport,
        "trap_oid": trap_oid,
        "varbinds": varbinds,
    }
    with open(sys.argv[1], "a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
