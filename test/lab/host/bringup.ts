/**
 * Building an instance from nothing, and mending one that is up. Both work through the Lab they
 * return (its exec, writeFile, startZigbee2mqtt), so a host is set up exactly as a test reaches it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab, UpOptions } from "../world.js";
import { planAddresses } from "./addressing.js";
import {
  MQTT_PORT,
  SNMP_TRAP_PORT,
  startMosquitto,
  startSnmptrapd,
  writeControllerConfigs,
} from "./controller.js";
import { dongleHostPaths, startDongle } from "./dongle.js";
import {
  DATA_DIR,
  FRONTEND_PORT,
  HOME_DIR,
  RC_SERVICE,
  RC_UPDATE,
  SERIAL_PORT,
  STAGING_DIR,
  ZIGBEE_USER,
} from "./files.js";
import {
  freeUserId,
  type HostExec,
  knownHosts,
  nodeHostKeyFingerprint,
  pidfileAlive,
  SSHD_PIDFILE,
  shapeHostFilesystem,
  sshdStart,
  sshTrustFiles,
  tcpOpen,
  writeControllerFiles,
  writeNodeFiles,
} from "./hosts.js";
import { preflight, REPO, Z2M_DIR, Z2M_INDEX, ZNP_VENV, z2mVersion } from "./install.js";
import { ensureKeyPair } from "./keys.js";
import { layout as layoutOf, NODE_FAULTS_DIR, RUN_BASE } from "./layout.js";
import { createHostNamespaces, ensurePrivateNsDir, listRunDirs } from "./namespaces.js";
import {
  type DongleAdapter,
  dongleIeee,
  type HostId,
  hostAddress,
  netnsName,
  networkSettings,
  nodeIds,
  rootLinkName,
} from "./naming.js";
import { buildNetwork, linkLocalAddresses } from "./network.js";
import { runDocBlocks } from "./node-setup.js";
import { waitFor } from "./run.js";
import { type LabInfo, type NodeInfo, readLabInfo, writeLabInfo } from "./state.js";

/** The port each dongle also listens on with `dongleTcp` (the usual one of network coordinators). */
const DONGLE_TCP_PORT = 6638;

function execOf(lab: Lab): HostExec {
  return (host, argv, options) => lab.exec(host, argv, options);
}

async function startNodeDongle(lab: Lab, id: HostId): Promise<void> {
  const node = lab.info.nodes[id]!;
  await startDongle(execOf(lab), {
    repo: REPO,
    node: id,
    ieee: node.ieee,
    adapter: node.adapter ?? "zstack",
    nodeLabDir: lab.layout.node(id).lab,
    ...(node.simulator.tcp ? { tcp: node.simulator.tcp } : {}),
    link: lab.info.link ?? "instant",
  });
}

/** A node's dongle family: `adapter` for all, or per node ("node1=ember,node2=zstack" style). */
export function adapterOf(options: UpOptions, id: string): DongleAdapter {
  const adapter = options.adapter;
  if (!adapter) return "zstack";
  return typeof adapter === "string" ? adapter : (adapter[id] ?? "zstack");
}

/** Other instances' addresses, so this one picks different ones. */
function otherInstances(name: string) {
  return listRunDirs(RUN_BASE)
    .filter((other) => other !== name)
    .map((other) => readLabInfo(layoutOf(other).labJson))
    .filter((other): other is LabInfo => other !== undefined)
    .map((other) => ({
      subnet: other.subnet.replace(/\/24$/, ""),
      linkLocal: Number(other.linkLocal.root.split(".")[2]),
    }));
}

/**
 * Builds an instance: addresses, keys and per-host files first (all in the run dir), lab.json,
 * then the network, the hosts' namespaces and filesystems, the services, and node1's zigbee2mqtt.
 * lab.json says `complete: true` only at the very end.
 */
export async function buildInstance(
  name: string,
  count: number,
  options: UpOptions,
  log: (line: string) => void,
  open: (info: LabInfo) => Lab,
): Promise<Lab> {
  const zigbee = options.zigbee ?? true;
  const peerSsh = options.peerSsh ?? false;
  preflight(zigbee);
  const started = Date.now();
  const step = (what: string) => log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
  const layout = layoutOf(name);
  const plan = await planAddresses(name, otherInstances(name));
  const ids = nodeIds(count);
  const ll = linkLocalAddresses(plan.linkLocal);
  const controllerAddress = hostAddress(plan.subnet, "controller");
  const nodeList = ids.map((id) => ({ id, address: hostAddress(plan.subnet, id) }));
  step(
    `lab ${name}: subnet ${plan.subnet}/24, controller ${controllerAddress} (root namespace: ${ll.controller})`,
  );

  mkdirSync(layout.keysDir, { recursive: true, mode: 0o700 });
  await ensureKeyPair(layout.privateKey, `controller@lab-${name}`);
  const uid = freeUserId();
  const hosts = [
    { address: controllerAddress, names: ["controller"] },
    ...nodeList.map((n) => ({ address: n.address, names: [n.id] })),
  ];
  await Promise.all(
    ids.map((id) =>
      writeNodeFiles(layout, {
        id,
        hosts,
        uid,
        z2mIndex: Z2M_INDEX,
        nodeBinary: process.execPath,
        znpVenv: ZNP_VENV,
      }),
    ),
  );
  for (const id of ids) {
    const ssh = join(layout.node(id).home, ".ssh");
    writeFileSync(join(ssh, "authorized_keys"), sshTrustFiles(layout, nodeList, id, peerSsh).authorizedKeys, {
      mode: 0o600,
    });
    writeFileSync(join(ssh, "known_hosts"), knownHosts(layout, nodeList), { mode: 0o644 });
  }
  writeControllerFiles(layout, hosts, nodeList);
  const addresses = { lab: controllerAddress, linkLocal: ll.controller };
  writeControllerConfigs(layout, addresses);

  const nodes: Record<string, NodeInfo> = {};
  for (const { id, address } of nodeList) {
    const fingerprint = await nodeHostKeyFingerprint(layout, id);
    const dongle = dongleHostPaths(layout.node(id).lab);
    nodes[id] = {
      id,
      hostname: id,
      netns: netnsName(name, id),
      address,
      ieee: dongleIeee(name, id, adapterOf(options, id)),
      adapter: adapterOf(options, id),
      ssh: {
        host: address,
        port: 22,
        user: ZIGBEE_USER,
        hostKeyFingerprint: fingerprint,
        originalHostKeyFingerprint: fingerprint,
      },
      frontend: { host: address, port: FRONTEND_PORT },
      dataDir: DATA_DIR,
      homeDir: HOME_DIR,
      stagingDir: STAGING_DIR,
      serialPort: SERIAL_PORT,
      zigbeeKey: { private: layout.node(id).zigbeeKey, public: `${layout.node(id).zigbeeKey}.pub` },
      simulator: {
        control: dongle.control,
        state: dongle.state,
        log: dongle.log,
        ...(options.dongleTcp ? { tcp: `${address}:${DONGLE_TCP_PORT}` } : {}),
      },
    };
  }
  const info: LabInfo = {
    version: 1,
    name,
    complete: false,
    createdAt: new Date().toISOString(),
    repo: REPO,
    runDir: layout.runDir,
    subnet: `${plan.subnet}/24`,
    linkLocal: { rootInterface: rootLinkName(name), root: ll.root, controller: ll.controller },
    controller: {
      hostname: "controller",
      netns: netnsName(name, "controller"),
      address: controllerAddress,
      mqttUrl: `mqtt://${ll.controller}:${MQTT_PORT}`,
      labMqttUrl: `mqtt://${controllerAddress}:${MQTT_PORT}`,
      snmptrapd: { host: ll.controller, port: SNMP_TRAP_PORT, labHost: controllerAddress },
      trapLog: layout.controller.trapLog,
      trapJson: layout.controller.trapJson,
      knownHosts: layout.controller.knownHosts,
      sidecarDir: layout.controller.sidecarDir,
    },
    ssh: { user: ZIGBEE_USER, privateKey: layout.privateKey, publicKey: `${layout.privateKey}.pub` },
    network: networkSettings(name),
    nodeIds: ids,
    nodes,
    z2m: { dir: Z2M_DIR, version: z2mVersion() },
    znp: { venv: ZNP_VENV },
    peerSsh,
    zigbee,
    link: options.link ?? "instant",
  };
  writeLabInfo(layout.labJson, info);
  const lab = open(info);
  const exec = execOf(lab);

  await buildNetwork({
    name,
    subnet: plan.subnet,
    linkLocal: plan.linkLocal,
    hosts: [{ id: "controller", address: controllerAddress }, ...nodeList],
  });
  step("network built");
  const allHosts: HostId[] = ["controller", ...ids];
  await ensurePrivateNsDir(layout);
  await Promise.all(allHosts.map((host) => createHostNamespaces(layout, name, host)));
  await Promise.all(
    allHosts.map((host) => shapeHostFilesystem(layout, name, host, { uid, z2mDir: Z2M_DIR })),
  );
  await Promise.all(ids.map((id) => runDocBlocks(exec, id)));
  step("hosts created (docs/nodes.md's set-up run on the nodes)");

  await startMosquitto(exec, layout, addresses);
  await startSnmptrapd(exec, layout, addresses, REPO);
  await Promise.all(
    ids.map(async (id) => {
      await sshdStart(exec, id);
      await waitFor(`sshd on ${id}`, async () =>
        (await tcpOpen(exec, "controller", nodes[id]!.address, 22)) ? true : undefined,
      );
      if (zigbee) await startNodeDongle(lab, id);
      await lab.writeFile(id, `${DATA_DIR}/configuration.yaml`, lab.configuration(id), { user: ZIGBEE_USER });
    }),
  );
  step(`controller and nodes running (Mosquitto, snmptrapd, sshd${zigbee ? ", dongles" : ""})`);

  if (zigbee) {
    await lab.startZigbee2mqtt(ids[0]!);
    step(`zigbee2mqtt online on ${ids[0]}`);
  }
  writeLabInfo(layout.labJson, { ...lab.refresh(), complete: true });
  lab.refresh();
  step(`lab ${name} is up`);
  return lab;
}

/**
 * Restarts whatever basic service of an instance that is up has stopped (Mosquitto, snmptrapd,
 * sshd, dongles: this undoes stop-sshd and stop-mqtt); false when a host itself is gone (then the
 * caller rebuilds the instance). zigbee2mqtt is left as it is.
 */
export async function healInstance(lab: Lab, log: (line: string) => void): Promise<boolean> {
  const exec = execOf(lab);
  const info = lab.info;
  for (const host of ["controller", ...info.nodeIds] as HostId[]) {
    if ((await lab.exec(host, ["true"], { timeout: 10_000 })).code !== 0) return false;
  }
  // An instance built by an older lab lacks what the current one sets up on its nodes (the OpenRC
  // stand-ins at /sbin, the faults dir, docs/nodes.md's sudo rule): rebuild it rather than run on it.
  for (const id of info.nodeIds as HostId[]) {
    const current = await lab.exec(id, [
      "/bin/sh",
      "-c",
      'test -x "$1" && test -x "$2" && test -d "$3" && test -f /etc/sudoers.d/zigbee2mqtt-ha',
      "sh",
      RC_SERVICE,
      RC_UPDATE,
      NODE_FAULTS_DIR,
    ]);
    if (current.code !== 0) {
      log(`${id} was set up by an older version of the lab`);
      return false;
    }
  }
  const addresses = { lab: info.controller.address, linkLocal: info.linkLocal.controller };
  await startMosquitto(exec, lab.layout, addresses);
  await startSnmptrapd(exec, lab.layout, addresses, REPO);
  for (const id of info.nodeIds as HostId[]) {
    if (!(await pidfileAlive(exec, id, SSHD_PIDFILE))) {
      log(`${id}: starting sshd`);
      await sshdStart(exec, id);
    }
    if (info.zigbee) await startNodeDongle(lab, id);
  }
  log(`lab ${lab.name} is up`);
  return true;
}
