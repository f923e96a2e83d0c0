import { join } from "node:path";

/** Every instance lives under here; nothing the lab creates is kept anywhere else. */
export const RUN_BASE = "/run/z2mha-lab";

/** Inside a node, the node's lab directory (HOST_DIR/lab) is bound here, root-only. */
export const NODE_LAB_DIR = "/run/lab";
/** Inside a node, HOST_DIR/faults is bound here: fault orders the node's own user must read. */
export const NODE_FAULTS_DIR = "/run/lab-faults";

/** Paths of one instance's run directory, as seen from the root namespace. */
export function layout(name: string) {
  const runDir = join(RUN_BASE, name);
  const node = (id: string) => {
    const dir = join(runDir, "nodes", id);
    return {
      dir,
      etc: join(dir, "etc"),
      bin: join(dir, "bin"),
      /** The upper layer of an overlay on the node's /usr/sbin (so /sbin/rc-service exists, as on Alpine). */
      sbin: join(dir, "sbin"),
      sbinWork: join(dir, "sbin-work"),
      /** Bound at /run/lab-faults inside the node. */
      faults: join(dir, "faults"),
      home: join(dir, "home"),
      /** Bound at /run/lab inside the node. */
      lab: join(dir, "lab"),
      hostKey: join(dir, "etc", "ssh", "ssh_host_ed25519_key"),
      originalHostKey: join(dir, "ssh_host_ed25519_key.orig"),
      zigbeeKey: join(dir, "id_ed25519"),
    };
  };
  return {
    runDir,
    labJson: join(runDir, "lab.json"),
    lock: join(runDir, ".lock"),
    nsDir: join(runDir, "ns"),
    nsFile: (host: string, kind: "mnt" | "pid" | "uts") => join(runDir, "ns", `${host}.${kind}`),
    keysDir: join(runDir, "keys"),
    privateKey: join(runDir, "keys", "controller_ed25519"),
    controller: {
      dir: join(runDir, "controller"),
      etc: join(runDir, "controller", "etc"),
      knownHosts: join(runDir, "controller", "known_hosts"),
      mosquittoConf: join(runDir, "controller", "mosquitto.conf"),
      mosquittoLog: join(runDir, "controller", "mosquitto.log"),
      mosquittoPid: join(runDir, "controller", "mosquitto.pid"),
      snmptrapdConf: join(runDir, "controller", "snmptrapd.conf"),
      snmptrapdPid: join(runDir, "controller", "snmptrapd.pid"),
      trapLog: join(runDir, "controller", "traps.log"),
      trapJson: join(runDir, "controller", "traps.jsonl"),
      sidecarDir: join(runDir, "controller", "sidecar"),
    },
    node,
  };
}

export type Layout = ReturnType<typeof layout>;
