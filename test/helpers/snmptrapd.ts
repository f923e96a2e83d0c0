import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { baseMibDir } from "./snmp-mibs.js";

/** An SNMPv3 user the receiver accepts (authPriv). */
export interface SnmptrapdUser {
  name: string;
  authProtocol?: "MD5" | "SHA" | "SHA-224" | "SHA-256" | "SHA-384" | "SHA-512";
  authKey: string;
  privProtocol?: "DES" | "AES" | "AES-192" | "AES-256";
  privKey: string;
  /**
   * Hex engine id of the sender, for traps (the sender's engine is authoritative). Leave it out
   * for a user that sends informs: those are localized to snmptrapd's own engine.
   */
  engineId?: string;
}

export interface SnmptrapdOptions {
  /** Directories searched for MIB modules before the SMIv2 base modules. */
  mibDirs?: string[];
  /** Modules to load (-m); default "ALL", every module in the directories. */
  mibs?: string;
  /** v1/v2c communities allowed to log; default ["public"]. */
  communities?: string[];
  users?: SnmptrapdUser[];
  /** UDP port; default a free one on 127.0.0.1 (give one when `wrap` runs it elsewhere). */
  port?: number;
  /** Address to listen on; default 127.0.0.1. */
  address?: string;
  /**
   * Command prefix to run snmptrapd under, e.g. ["ip", "netns", "exec", "lab-ctl"] for a lab
   * namespace. The log and config stay in a local temp dir, which the namespace shares.
   */
  wrap?: string[];
}

export interface ReceivedVarbind {
  /** As snmptrapd prints it, e.g. "ZIGBEE2MQTT-HA-MIB::z2mhaNodeId.0". */
  name: string;
  /** e.g. "STRING", "INTEGER", "Gauge32", "OID"; "" when snmptrapd printed no type. */
  type: string;
  /** The printed value, e.g. `node2`, `rolledBack(3)`, `1234 milliseconds`. */
  value: string;
}

export interface ReceivedTrap {
  version: "1" | "2c" | "3";
  /** Community (v1/v2c) or user name (v3). */
  security: string;
  /** Transport address, e.g. "UDP: [127.0.0.1]:40000->[127.0.0.1]:16200". */
  from: string;
  /** snmpTrapOID.0's value as printed, e.g. "ZIGBEE2MQTT-HA-MIB::z2mhaSwitchoverSucceeded". */
  trapOid: string;
  /** Every varbind, sysUpTime.0 and snmpTrapOID.0 included. */
  varbinds: ReceivedVarbind[];
}

const BEGIN = "##TRAP## ";
const SEPARATOR = "\n##VB## ";
const END = "\n##END##";
// One record per notification: a header, then the varbinds each on a line of its own.
const FORMAT = `${BEGIN}v=%s sec=%u from=%b${SEPARATOR}%V${SEPARATOR}%v${END}\\n`.replaceAll("\n", "\\n");
const VERSIONS: Record<string, ReceivedTrap["version"]> = { "0": "1", "1": "2c", "3": "3" };

/** Parses the log that `startSnmptrapd` makes snmptrapd write. */
export function parseTrapLog(text: string): ReceivedTrap[] {
  const traps: ReceivedTrap[] = [];
  let from = text.indexOf(BEGIN);
  while (from >= 0) {
    const end = text.indexOf(END, from);
    if (end < 0) break; // still being written
    const [header = "", ...lines] = text.slice(from + BEGIN.length, end).split(SEPARATOR);
    const head = /^v=(\S+) sec=(.*?) from=(.*)$/s.exec(header);
    const varbinds = lines.map((line): ReceivedVarbind => {
      const match = /^(\S+) = (?:([A-Za-z][\w-]*): ?)?(.*)$/s.exec(line);
      return match
        ? { name: match[1] as string, type: match[2] ?? "", value: match[3] as string }
        : { name: line, type: "", value: "" };
    });
    traps.push({
      version: VERSIONS[head?.[1] ?? ""] ?? "2c",
      security: head?.[2] ?? "",
      from: head?.[3] ?? "",
      trapOid: varbinds.find((v) => /snmpTrapOID\.0$/.test(v.name))?.value ?? "",
      varbinds,
    });
    from = text.indexOf(BEGIN, end);
  }
  return traps;
}

/** The printed value of the varbind whose name ends with `suffix` (e.g. "z2mhaNodeId.0"). */
export function varbindValue(trap: ReceivedTrap, suffix: string): string | undefined {
  return trap.varbinds.find((v) => v.name === suffix || v.name.endsWith(`::${suffix}`))?.value;
}

/** A UDP port on 127.0.0.1 that was free a moment ago. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function configText(options: SnmptrapdOptions): string {
  const safe = /^[^\s"'\\]+$/;
  const lines: string[] = [];
  for (const community of options.communities ?? ["public"]) {
    if (!safe.test(community)) throw new Error(`community with blanks or quotes: ${community}`);
    lines.push(`authCommunity log,execute,net ${community}`);
  }
  const names = new Set<string>();
  for (const user of options.users ?? []) {
    for (const value of [user.name, user.authKey, user.privKey]) {
      if (!safe.test(value)) throw new Error("SNMPv3 user fields must have no blanks or quotes");
    }
    const engine = user.engineId ? `-e 0x${user.engineId.replace(/^0x/, "")} ` : "";
    lines.push(
      `createUser ${engine}${user.name} ${user.authProtocol ?? "SHA"} ${user.authKey} ${user.privProtocol ?? "AES"} ${user.privKey}`,
    );
    names.add(user.name);
  }
  for (const name of names) lines.push(`authUser log,execute,net ${name} priv`);
  return `${lines.join("\n")}\n`;
}

/** A real snmptrapd on 127.0.0.1 that logs what it receives in a parseable form. */
export class Snmptrapd {
  #stderr = "";
  #exited: Promise<void>;
  #running = true;

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    child.stdout?.resume();
    this.#exited = new Promise((resolve) => {
      child.once("exit", () => {
        this.#running = false;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.#running;
  }

  /** What snmptrapd wrote to stderr, e.g. MIB parse errors. */
  get stderr(): string {
    return this.#stderr;
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }

  traps(): ReceivedTrap[] {
    return parseTrapLog(this.log());
  }

  /** Waits until `predicate` holds for the traps received so far; returns them. */
  async waitFor(
    predicate: (traps: ReceivedTrap[]) => boolean,
    timeoutMs = 10_000,
    what = "the expected notifications",
  ): Promise<ReceivedTrap[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const traps = this.traps();
      if (predicate(traps)) return traps;
      if (!this.#running) throw new Error(`snmptrapd exited while waiting for ${what}:\n${this.#stderr}`);
      if (Date.now() > deadline) {
        throw new Error(`no ${what} within ${timeoutMs} ms; received:\n${this.log() || "(nothing)"}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Waits for the trap whose snmpTrapOID.0 prints as `trapOid` (or ends with it). */
  async waitForTrap(trapOid: string, timeoutMs = 10_000): Promise<ReceivedTrap> {
    const match = (t: ReceivedTrap) => t.trapOid === trapOid || t.trapOid.endsWith(`::${trapOid}`);
    const traps = await this.waitFor((all) => all.some(match), timeoutMs, trapOid);
    return traps.find(match) as ReceivedTrap;
  }

  async stop(): Promise<void> {
    if (this.#running) {
      this.child.kill("SIGTERM");
      const killer = setTimeout(() => this.child.kill("SIGKILL"), 3_000);
      await this.#exited;
      clearTimeout(killer);
    }
    running.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const running = new Set<Snmptrapd>();
// A test run that dies must not leave receivers behind.
process.once("exit", () => {
  for (const daemon of running) if (daemon.running && daemon.pid) process.kill(daemon.pid, "SIGKILL");
});

async function startOnce(options: SnmptrapdOptions, port: number): Promise<Snmptrapd | undefined> {
  const dir = mkdtempSync(join(tmpdir(), "z2mha-snmptrapd-"));
  const conf = join(dir, "snmptrapd.conf");
  const logFile = join(dir, "traps.log");
  writeFileSync(conf, configText(options));
  const mibPath = [...(options.mibDirs ?? []), baseMibDir()].join(":");
  const args = [
    "-f", // foreground
    "-C", // no configuration but ours
    "-c",
    conf,
    "-n", // no DNS for source addresses
    "-X", // no AgentX master
    "-Lf",
    logFile,
    "-F",
    FORMAT,
    "-M",
    mibPath,
    "-m",
    options.mibs ?? "ALL",
    `udp:${options.address ?? "127.0.0.1"}:${port}`,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, SNMP_PERSISTENT_DIR: join(dir, "persist") };
  delete env.MIBS;
  delete env.MIBDIRS;
  const [command, ...prefix] = [...(options.wrap ?? []), "snmptrapd"];
  const child = spawn(command as string, [...prefix, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  const daemon = new Snmptrapd(port, dir, logFile, child);
  running.add(daemon);
  const deadline = Date.now() + 10_000;
  // snmptrapd logs its version once it listens, and exits when the port is taken.
  while (Date.now() < deadline) {
    if (/NET-SNMP version/.test(daemon.log())) return daemon;
    if (!daemon.running) {
      const said = daemon.stderr + daemon.log();
      await daemon.stop(); // removes the log too
      if (/Address already in use/i.test(said)) return undefined;
      throw new Error(`snmptrapd failed to start:\n${said}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const said = daemon.stderr + daemon.log();
  await daemon.stop();
  throw new Error(`snmptrapd did not start within 10 s:\n${said}`);
}

/** Starts snmptrapd (127.0.0.1 and a free UDP port unless given); stop() it when done. */
export async function startSnmptrapd(options: SnmptrapdOptions = {}): Promise<Snmptrapd> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const daemon = await startOnce(options, options.port ?? (await freeUdpPort()));
    if (daemon) return daemon;
    if (options.port) break;
  }
  throw new Error("snmptrapd could not bind a UDP port on 127.0.0.1");
}
