/**
 * Contents of the files that make a lab host look like the prototype's nodes: the zigbee user
 * (in the node's /etc only), sshd, the zigbee2mqtt service definition. Pure functions of their
 * inputs; hosts.ts writes them. zigbee's sudo rule is not here: the lab runs docs/nodes.md's
 * block for it (node-setup.ts), so the documented rule is the tested one.
 */

import { NODE_FAULTS_DIR } from "./layout.js";

export const ZIGBEE_USER = "zigbee";
export const SERIAL_PORT = "/dev/ttyUSB0";
export const DATA_DIR = "/opt/zigbee2mqtt/data";
export const HOME_DIR = `/home/${ZIGBEE_USER}`;
/** Where the product prepares standby copies (created by the product, not by the lab). */
export const STAGING_DIR = `${HOME_DIR}/zigbee2mqtt-ha`;
export const FRONTEND_PORT = 8080;
export const SERVICE = "zigbee2mqtt";
/** The python3 that `python3` finds first on the nodes' PATH (and on sudo's secure_path). */
export const NODE_PYTHON = "/usr/local/bin/python3";
/** Where Alpine's OpenRC has them; in the lab, the stand-ins in test/lab/node (an overlay on /usr/sbin). */
export const RC_SERVICE = "/sbin/rc-service";
export const RC_UPDATE = "/sbin/rc-update";

/** Paths that reach a shell or sudoers as words must be plain. */
export function checkPlainPath(path: string): string {
  if (!/^\/[A-Za-z0-9._/+-]+$/.test(path)) {
    throw new Error(`path ${JSON.stringify(path)} has characters the lab will not put in config files`);
  }
  return path;
}

export interface HostsEntry {
  address: string;
  names: string[];
}

export function hostsFile(entries: HostsEntry[]): string {
  const lines = ["127.0.0.1\tlocalhost", ...entries.map((e) => `${e.address}\t${e.names.join(" ")}`)];
  return `# written by the zigbee2mqtt-ha lab\n${lines.join("\n")}\n`;
}

/** The machine's passwd plus the zigbee user, which exists only in the nodes' view. */
export function passwdWithZigbee(hostPasswd: string, uid: number, gid: number): string {
  const kept = hostPasswd.split("\n").filter((line) => line && !line.startsWith(`${ZIGBEE_USER}:`));
  return `${[...kept, `${ZIGBEE_USER}:x:${uid}:${gid}:zigbee2mqtt:${HOME_DIR}:/bin/sh`].join("\n")}\n`;
}

/** The machine's groups plus the zigbee group, with zigbee in dialout (the dongle's group). */
export function groupWithZigbee(hostGroup: string, gid: number): string {
  const lines = hostGroup
    .split("\n")
    .filter((line) => line && !line.startsWith(`${ZIGBEE_USER}:`))
    .map((line) => {
      if (!line.startsWith("dialout:")) return line;
      const fields = line.split(":");
      const members = (fields[3] ?? "").split(",").filter(Boolean);
      fields[3] = [...members, ZIGBEE_USER].join(",");
      return fields.join(":");
    });
  return `${[...lines, `${ZIGBEE_USER}:x:${gid}:`].join("\n")}\n`;
}

/** A shadow file with no password for anyone: nodes are entered by key or by the lab, never by password. */
export function shadowFor(passwd: string): string {
  const names = passwd
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(":")[0]);
  return `${names.map((name) => `${name}:*:19000:0:99999:7:::`).join("\n")}\n`;
}

export function sshdConfig(node: string): string {
  return [
    `# sshd of lab node ${node} (written by the zigbee2mqtt-ha lab)`,
    "ListenAddress 0.0.0.0:22",
    "HostKey /etc/ssh/ssh_host_ed25519_key",
    "PidFile /run/sshd.pid",
    // Key login only; PAM stays out (no session machinery in a namespace).
    "UsePAM no",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin no",
    `AllowUsers ${ZIGBEE_USER}`,
    "AuthorizedKeysFile .ssh/authorized_keys",
    "StrictModes yes",
    "UseDNS no",
    "PrintMotd no",
    "X11Forwarding no",
    "AllowTcpForwarding no",
    // Tests open many connections at once.
    "MaxStartups 100:30:200",
    "MaxSessions 50",
    "LogLevel VERBOSE",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
}

/** The node's /etc/init.d/zigbee2mqtt, as an Alpine user would write it; read by the lab's rc-service. */
export function zigbee2mqttInitScript(node: string, nodeBinary: string, z2mIndex: string): string {
  return [
    "#!/sbin/openrc-run",
    `# zigbee2mqtt on lab node ${node} (written by the zigbee2mqtt-ha lab, read by ${RC_SERVICE}).`,
    "# Not started at boot: only `rc-service zigbee2mqtt start` starts it.",
    'description="Zigbee2MQTT"',
    `command="${checkPlainPath(nodeBinary)}"`,
    `command_args="${checkPlainPath(z2mIndex)}"`,
    `command_user="${ZIGBEE_USER}:${ZIGBEE_USER}"`,
    'directory="/opt/zigbee2mqtt"',
    `pidfile="/run/${SERVICE}.pid"`,
    `output_log="/var/log/${SERVICE}.log"`,
    'retry="TERM/30/KILL/5"',
    `export ZIGBEE2MQTT_DATA="${DATA_DIR}"`,
    // The onboarding web server would otherwise wait for a browser when the config is missing.
    "export Z2M_ONBOARD_NO_SERVER=1",
    "",
  ].join("\n");
}

/**
 * Where the lab's `tool-fault` puts its order on a node: `TOOL MODE COUNT` (COUNT -1: every run).
 * The tools run as zigbee (no sudo), so zigbee's python3 wrapper must read the order and count it
 * down: a file of mode 0666 in a root-owned directory that only the node sees (not in any path
 * the product uses).
 */
export const TOOL_FAULT_FILE = `${NODE_FAULTS_DIR}/tool-fault`;

/**
 * /usr/local/bin/python3 on the nodes: the zigpy-znp virtualenv's interpreter, with the lab's
 * coordinator-tool faults. When TOOL_FAULT_FILE names the tool being run (`-m zigpy_znp.tools.X`)
 * and has runs left (`--help` runs do not count): `fail` exits 1 before touching the dongle; `corrupt` runs the tool and then
 * cuts the file it wrote (`-o`) in half, as a dump damaged on its way would be.
 */
export function pythonWrapper(venv: string): string {
  return `#!/bin/sh
# python3 of the zigpy-znp virtualenv (zigbee2mqtt-ha lab)
py=${checkPlainPath(venv)}/bin/python3
f=${TOOL_FAULT_FILE}
# A --help run (the sidecar's probes ask for one) touches no dongle: it neither fails nor uses up a run.
case " $* " in *" --help "*) exec "$py" "$@" ;; esac
if [ "$1" = -m ] && [ -r "$f" ] && read -r tool mode left <"$f" && [ "$2" = "zigpy_znp.tools.$tool" ] && [ "$left" != 0 ]; then
  [ "$left" -gt 0 ] && echo "$tool $mode $((left - 1))" >"$f"
  case "$mode" in
    fail)
      echo "lab tool-fault: $tool fails on purpose (the dongle was not touched)" >&2
      exit 1 ;;
    corrupt)
      "$py" "$@" || exit
      out= prev=
      for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
      [ -f "$out" ] || exit 0
      size=$(wc -c <"$out")
      head -c $((size / 2)) "$out" >"$out.lab-cut" && cat "$out.lab-cut" >"$out" && rm -f "$out.lab-cut"
      exit 0 ;;
    hang)
      # A tool that never finishes (a dongle that stopped answering), still named as the tool.
      echo "lab tool-fault: $tool hangs on purpose" >&2
      exec "$py" -c 'import time; time.sleep(1e6)' "zigpy_znp.tools.$tool" ;;
  esac
fi
exec "$py" "$@"
`;
}

function hex(value: number, digits = 2): string {
  return `0x${value.toString(16).padStart(digits, "0")}`;
}

export interface Z2mConfigInput {
  lab: string;
  node: string;
  nodeAddress: string;
  mqttServer: string;
  network: { panId: number; extendedPanId: number[]; networkKey: number[]; channel: number };
  /** zigbee2mqtt's serial.adapter (default zstack). */
  adapter?: "zstack" | "ember";
}

/**
 * configuration.yaml of a lab node. Comments on purpose: tests check that whoever edits this file
 * keeps them. Settings version 5 is zigbee2mqtt 2.14's own, so zigbee2mqtt never migrates (and
 * rewrites) it; the network identity is fixed for the same reason (GENERATE is written back).
 */
export function z2mConfiguration(input: Z2mConfigInput): string {
  const { network } = input;
  return `# zigbee2mqtt configuration of lab node ${input.node} (zigbee2mqtt-ha lab "${input.lab}").
# The comments in this file are part of the lab: tools that edit it must keep them.
version: 5
homeassistant:
  enabled: false
mqtt:
  base_topic: zigbee2mqtt
  # The controller's Mosquitto, on the lab network.
  server: ${input.mqttServer}
  # Short, so the broker publishes the "offline" will soon after a node vanishes.
  keepalive: 10
serial:
  # The coordinator dongle. On a real node this is often a /dev/serial/by-id/... path (per node).
  port: ${SERIAL_PORT}
  adapter: ${input.adapter ?? "zstack"}
frontend:
  enabled: true
  # This node's own address: differs per node.
  host: ${input.nodeAddress}
  port: ${FRONTEND_PORT}
advanced:
  # The lab network's identity, fixed per lab instance.
  pan_id: ${hex(network.panId, 4)}
  ext_pan_id: [${network.extendedPanId.map((b) => hex(b)).join(", ")}]
  network_key: [${network.networkKey.map((b) => hex(b)).join(", ")}]
  channel: ${network.channel}
  log_level: info
`;
}
