/**
 * `z2m-ha init`: from a list of node addresses to a config that `config check` accepts. It makes
 * (or reuses) the controller's SSH key, shows each node's host key for confirmation and pins it
 * (trust on first use), logs in to read each node's zigbee2mqtt setup and proposes data_dir,
 * serial port (by-id), frontend host, overrides, service commands and tools, then writes the
 * config and prints what each node still needs (authorized_keys line, sudo rule, dialout).
 * Interactive by default; `--non-interactive` takes everything from flags and never asks.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline/promises";
import { Command } from "commander";
import ssh2 from "ssh2";
import { stringify } from "yaml";
import { ConfigError, parseConfig } from "../config/load.js";
import { createLogger } from "../log.js";
import { normalizeFingerprint } from "../node/fingerprint.js";
import { scanHostKey } from "../node/host-key-scan.js";
import { type NodeSurvey, surveyNode } from "../node/node-survey.js";
import { type ServiceManager, serviceCommands, sudoersRule } from "../node/service-manager.js";
import { isSshError, SshTransport } from "../node/ssh.js";
import { CliError } from "./client.js";

export interface InitOptions {
  nodes: { id: string; host: string; port: number }[];
  user: string;
  output: string;
  key: string;
  acceptHostKeys: Record<string, string>;
  trustNewHostKeys: boolean;
  mqttUrl?: string;
  mqttUsername?: string;
  mqttPasswordFile?: string;
  baseTopic?: string;
  serverHost: string;
  serverPort: number;
  stateDir: string;
  clusterName: string;
  dataDir?: string;
  service: string;
  force: boolean;
  connectTimeoutMs: number;
}

/** How init talks to a person; absent in --non-interactive mode. */
export interface Prompter {
  ask(question: string, fallback?: string): Promise<string>;
  confirm(question: string, fallback: boolean): Promise<boolean>;
}

export interface InitNodeResult {
  id: string;
  host: string;
  port: number;
  hostKey: { type: string; fingerprint: string };
  survey?: NodeSurvey;
  /** What the node still needs, as lines to paste (as root on the node). */
  todo: string[];
}

export interface InitResult {
  written: boolean;
  output: string;
  key: string;
  publicKey: string;
  nodes: InitNodeResult[];
  notes: string[];
}

type Print = (line: string) => void;

/** Parses "node1=192.168.1.5", "node1=host:2222" or (ids given by order) "192.168.1.5". */
export function parseNodeSpec(spec: string, index: number): { id: string; host: string; port: number } {
  const match = /^(?:([a-z0-9][a-z0-9_-]{0,31})=)?(\[[^\]]+\]|[^:=\s]+)(?::(\d{1,5}))?$/.exec(spec.trim());
  if (!match) throw new CliError(`bad --node ${JSON.stringify(spec)} (use id=host or id=host:port)`, 2);
  const port = match[3] ? Number(match[3]) : 22;
  if (port < 1 || port > 65535) throw new CliError(`bad port in --node ${spec}`, 2);
  return { id: match[1] ?? `node${index + 1}`, host: (match[2] as string).replace(/^\[|\]$/g, ""), port };
}

/** The controller's key pair: reused when it exists, generated (ed25519, 0600) otherwise. */
export function ensureControllerKey(path: string): { publicKey: string; created: boolean } {
  if (existsSync(path)) {
    const pub = `${path}.pub`;
    if (existsSync(pub)) return { publicKey: readFileSync(pub, "utf8").trim(), created: false };
    const parsed = ssh2.utils.parseKey(readFileSync(path));
    if (parsed instanceof Error)
      throw new CliError(`cannot read the private key ${path}: ${parsed.message}`, 2);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key) throw new CliError(`no key in ${path}`, 2);
    return {
      publicKey: `${key.type} ${key.getPublicSSH().toString("base64")} zigbee2mqtt-ha`,
      created: false,
    };
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "zigbee2mqtt-ha" });
  writeFileSync(path, pair.private, { mode: 0o600, flag: "wx" });
  writeFileSync(`${path}.pub`, `${pair.public}\n`, { mode: 0o644, flag: "wx" });
  return { publicKey: pair.public.trim(), created: true };
}

function managerLines(manager: ServiceManager | undefined, user: string, service: string): string[] {
  const group = `addgroup ${user} dialout 2>/dev/null || usermod -aG dialout ${user}`;
  const rule = sudoersRule(user, manager ?? "openrc", service);
  return [
    `cat >/etc/sudoers.d/zigbee2mqtt-ha <<'EOF'\n${rule}\nEOF`,
    "chmod 0440 /etc/sudoers.d/zigbee2mqtt-ha && visudo -c -f /etc/sudoers.d/zigbee2mqtt-ha",
    group,
  ];
}

function authorizedKeysLines(user: string, publicKey: string): string[] {
  return [
    `install -d -m 0700 -o ${user} -g ${user} ~${user}/.ssh`,
    `echo 'restrict ${publicKey}' >>~${user}/.ssh/authorized_keys`,
    `chown ${user}: ~${user}/.ssh/authorized_keys && chmod 0600 ~${user}/.ssh/authorized_keys`,
  ];
}

/** Does the work of `init`; `prompt` is undefined in non-interactive mode. */
export async function runInit(
  options: InitOptions,
  prompt: Prompter | undefined,
  print: Print,
): Promise<InitResult> {
  if (options.nodes.length < 2) throw new CliError("give at least two nodes (--node id=host, repeated)", 2);
  const ids = options.nodes.map((n) => n.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new CliError(`node id ${dup} given twice`, 2);
  if (existsSync(options.output) && !options.force)
    throw new CliError(`${options.output} exists; give --force to replace it`, 2);

  const key = ensureControllerKey(options.key);
  print(`${key.created ? "generated" : "using"} the controller's SSH key ${options.key}`);
  const result: InitResult = {
    written: false,
    output: options.output,
    key: options.key,
    publicKey: key.publicKey,
    nodes: [],
    notes: [],
  };

  // 1. Host keys: shown, confirmed, pinned.
  for (const spec of options.nodes) {
    const hostKey = await scanHostKey(spec.host, spec.port, options.connectTimeoutMs).catch(
      (error: Error) => {
        throw new CliError(`${spec.id}: ${error.message}`, 1);
      },
    );
    print(`${spec.id} ${spec.host}:${spec.port} host key ${hostKey.type} ${hostKey.fingerprint}`);
    const given = options.acceptHostKeys[spec.id];
    let trusted = false;
    if (given !== undefined) {
      if (normalizeFingerprint(given) !== hostKey.fingerprint)
        throw new CliError(
          `${spec.id}: the server presented ${hostKey.fingerprint}, not the ${given} you gave: not trusting it`,
          1,
        );
      trusted = true;
    } else if (options.trustNewHostKeys) {
      trusted = true;
    } else if (prompt) {
      trusted = await prompt.confirm(
        `  is this ${spec.id}'s key? Compare with \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` run on ${spec.id}`,
        false,
      );
    }
    if (!trusted)
      throw new CliError(
        `${spec.id}: host key not confirmed (give --accept-host-key ${spec.id}=${hostKey.fingerprint} after checking it on the node)`,
        1,
      );
    result.nodes.push({ ...spec, hostKey, todo: [] });
  }

  // 2. Log in with the pinned key; read each node's setup.
  const logger = createLogger("silent");
  let missingAccess = false;
  for (const node of result.nodes) {
    for (;;) {
      const transport = SshTransport.forNode(
        {
          id: node.id,
          ssh: {
            host: node.host,
            port: node.port,
            user: options.user,
            private_key: options.key,
            host_key: node.hostKey.fingerprint,
            connect_timeout: options.connectTimeoutMs,
            keepalive_interval: 5_000,
          },
        },
        logger,
        { connectAttempts: 1 },
      );
      try {
        await transport.connect();
        node.survey = await surveyNode(
          { exec: (argv, o) => transport.exec(argv, o), readFile: (p, o) => transport.readFile(p, o) },
          { service: options.service, ...(options.dataDir ? { dataDir: options.dataDir } : {}) },
        );
        break;
      } catch (error) {
        if (!isSshError(error, "auth-failed"))
          throw new CliError(`${node.id}: ${(error as Error).message}`, 1);
        print(
          `${node.id}: ${options.user}@${node.host} does not accept the controller's key yet. On ${node.id}, as root:`,
        );
        for (const line of authorizedKeysLines(options.user, key.publicKey)) print(`    ${line}`);
        if (!prompt) {
          missingAccess = true;
          break;
        }
        const again = await prompt.confirm("  done? try again", true);
        if (!again) throw new CliError(`${node.id}: the controller's key is not authorized`, 1);
      } finally {
        await transport.close();
      }
    }
  }
  if (missingAccess) {
    result.notes.push("add the controller's key on the nodes above, then run z2m-ha init again");
    return result;
  }

  // 3. Proposals, confirmed or changed interactively.
  const ask = async (question: string, fallback: string | undefined): Promise<string | undefined> =>
    prompt ? (await prompt.ask(question, fallback)) || fallback : fallback;
  const nodes: Record<string, unknown>[] = [];
  for (const node of result.nodes) {
    const survey = node.survey as NodeSurvey;
    if (!survey.dataDir)
      throw new CliError(
        `${node.id}: no zigbee2mqtt configuration.yaml found (looked in ${survey.looked.join(", ")}); give --data-dir`,
        1,
      );
    if (survey.adapter && survey.adapter !== "zstack")
      throw new CliError(
        `${node.id}: serial.adapter is ${survey.adapter}: not supported yet (zigbee2mqtt-ha copies TI Z-Stack coordinators only)`,
        1,
      );
    if (survey.serialPort && !survey.serialPort.startsWith("/"))
      throw new CliError(
        `${node.id}: serial.port ${survey.serialPort} is a network coordinator: not supported yet`,
        1,
      );
    if (!survey.adapter)
      result.notes.push(`${node.id}: set serial.adapter: zstack in zigbee2mqtt's configuration.yaml`);
    const dataDir = (await ask(`${node.id} data_dir`, survey.dataDir)) as string;
    const port = (await ask(
      `${node.id} coordinator port`,
      survey.byIdPort ?? survey.serialPort ?? "/dev/ttyUSB0",
    )) as string;
    if (!survey.byIdPort && !port.startsWith("/dev/serial/by-id/"))
      result.notes.push(
        `${node.id}: ${port} is no /dev/serial/by-id/ path; use the dongle's by-id path once it has one`,
      );
    const frontendHost = await ask(`${node.id} frontend.host`, survey.frontendHost);
    const manager = survey.manager;
    if (!manager)
      result.notes.push(
        `${node.id}: neither OpenRC nor systemd found; set the node's service commands by hand`,
      );
    if (!survey.tools)
      result.notes.push(
        `${node.id}: no python there imports zigpy-znp; install it (docs/nodes.md) and set coordinator.tools`,
      );
    const overrides: Record<string, string> = { "serial.port": port };
    if (frontendHost) overrides["frontend.host"] = frontendHost;
    nodes.push({
      id: node.id,
      ssh: {
        host: node.host,
        port: node.port,
        user: options.user,
        private_key: options.key,
        host_key: node.hostKey.fingerprint,
      },
      data_dir: dataDir,
      staging_dir: `${survey.home.replace(/\/$/, "")}/zigbee2mqtt-ha`,
      coordinator: { port, tools: (survey.tools ?? ["python3", "-m", "zigpy_znp.tools"]).join(" ") },
      service: Object.fromEntries(
        Object.entries(serviceCommands(manager ?? "openrc", options.service)).map(([k, v]) => [
          k,
          v.join(" "),
        ]),
      ),
      overrides,
    });
    node.todo = managerLines(manager, options.user, options.service);
  }

  const first = result.nodes[0]?.survey;
  const mqttUrl = await ask("MQTT broker URL", options.mqttUrl ?? first?.mqttServer);
  if (!mqttUrl) throw new CliError("no MQTT broker: give --mqtt-url", 2);
  if (!options.mqttUsername && first?.mqttUser)
    result.notes.push(
      `zigbee2mqtt logs in to the broker as ${first.mqttUser}: give the sidecar a login too (mqtt.username, mqtt.password)`,
    );
  const mqtt: Record<string, unknown> = {
    url: mqttUrl,
    base_topic: options.baseTopic ?? first?.mqttBaseTopic ?? "zigbee2mqtt",
    ...(options.mqttUsername ? { username: options.mqttUsername } : {}),
    ...(options.mqttPasswordFile ? { password: { file: options.mqttPasswordFile } } : {}),
  };
  const serverHost = (await ask(
    "API listen address (the LAN address when Home Assistant runs elsewhere)",
    options.serverHost,
  )) as string;
  const config = {
    cluster_name: options.clusterName,
    state_dir: options.stateDir,
    server: { host: serverHost, port: options.serverPort },
    mqtt,
    nodes,
  };
  const text = `# zigbee2mqtt-ha config written by z2m-ha init on ${new Date().toISOString().slice(0, 10)}.
# Every key: docs/configuration.md. Check the nodes with: z2m-ha doctor --config ${options.output}
${stringify(config, { lineWidth: 0 })}`;
  try {
    parseConfig(text, options.output);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new CliError(`the config init made is not valid (a bug):\n${error.message}`, 1);
    throw error;
  }
  if (prompt && !(await prompt.confirm(`write ${options.output}`, true))) return result;
  mkdirSync(dirname(options.output), { recursive: true, mode: 0o755 });
  writeFileSync(options.output, text, { mode: 0o600 });
  result.written = true;
  return result;
}

function printResult(result: InitResult, print: Print): void {
  if (result.written) {
    print(`wrote ${result.output}`);
    print("");
    for (const node of result.nodes) {
      print(`On ${node.id} (${node.host}), as root, if not done yet (docs/nodes.md):`);
      for (const line of node.todo) print(`    ${line.replaceAll("\n", "\n    ")}`);
    }
  }
  for (const note of result.notes) print(`note: ${note}`);
  if (result.written) print(`then: z2m-ha doctor --config ${result.output}`);
}

/**
 * Questions on stderr, answers line by line from stdin. Lines are read through one iterator, so
 * answers piped in all at once are not lost between questions (readline drops lines that arrive
 * while no question is asked); the end of input is an error rather than a hang.
 */
function terminalPrompter(): Prompter & { close(): void } {
  const rl = createInterface({ input: process.stdin, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const answer = async (question: string): Promise<string> => {
    process.stderr.write(question);
    const next = await lines.next();
    if (next.done) throw new CliError("no answer: the input ended (use --non-interactive with flags)", 2);
    return String(next.value).trim();
  };
  return {
    ask: (question, fallback) => answer(`${question}${fallback !== undefined ? ` [${fallback}]` : ""}: `),
    confirm: async (question, fallback) => {
      const reply = (await answer(`${question}? [${fallback ? "Y/n" : "y/N"}] `)).toLowerCase();
      return reply === "" ? fallback : ["y", "yes"].includes(reply);
    },
    close: () => rl.close(),
  };
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function initCommand(globals: () => { json?: boolean }): Command {
  return new Command("init")
    .description(
      "write a config: SSH key, each node's host key (confirmed, then pinned), its zigbee2mqtt setup; prints what the nodes still need",
    )
    .option("--node <id=host[:port]>", "a zigbee2mqtt node (repeat for each)", collect, [] as string[])
    .option("--user <name>", "SSH user on the nodes", "zigbee")
    .option("-o, --output <file>", "config file to write", "/etc/zigbee2mqtt-ha/config.yaml")
    .option(
      "--key <file>",
      "controller's SSH private key (generated if missing; default: next to the config)",
    )
    .option(
      "--accept-host-key <id=SHA256:...>",
      "the node's host key fingerprint, checked on the node (repeat)",
      collect,
      [] as string[],
    )
    .option(
      "--trust-new-host-keys",
      "pin whatever host keys the nodes present (trust on first use, unconfirmed)",
    )
    .option("--mqtt-url <url>", "broker URL (default: the first node's zigbee2mqtt mqtt.server)")
    .option("--mqtt-username <name>", "broker login")
    .option("--mqtt-password-file <file>", "file holding the broker password")
    .option("--base-topic <topic>", "zigbee2mqtt's base topic (default: from its configuration.yaml)")
    .option("--server-host <address>", "API listen address", "127.0.0.1")
    .option("--server-port <port>", "API port", "8485")
    .option("--state-dir <dir>", "state directory", "/var/lib/zigbee2mqtt-ha")
    .option("--cluster-name <name>", "name shown in Home Assistant and SNMP", "zigbee2mqtt")
    .option("--data-dir <dir>", "zigbee2mqtt's data dir on the nodes (default: found on each node)")
    .option("--service <name>", "zigbee2mqtt's service name on the nodes", "zigbee2mqtt")
    .option("--connect-timeout <seconds>", "SSH connect timeout", "10")
    .option("--force", "replace an existing config file")
    .option("--non-interactive", "ask nothing: everything from the flags")
    .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
      const interactive = !opts.nonInteractive;
      const prompt = interactive ? terminalPrompter() : undefined;
      const lines: string[] = [];
      const print: Print = (line) => {
        if (globals().json) lines.push(line);
        else process.stdout.write(`${line}\n`);
      };
      try {
        let specs = opts.node as string[];
        if (specs.length === 0 && prompt) {
          specs = (await prompt.ask("zigbee2mqtt nodes (id=host or host, separated by spaces)"))
            .split(/\s+/)
            .filter(Boolean);
        }
        const output = opts.output as string;
        const accept: Record<string, string> = {};
        for (const spec of opts.acceptHostKey as string[]) {
          const [id, fingerprint] = spec.split("=", 2);
          if (!id || !fingerprint) throw new CliError(`bad --accept-host-key ${spec} (use id=SHA256:...)`, 2);
          accept[id] = fingerprint;
        }
        const number = (name: string, value: unknown) => {
          const n = Number(value);
          if (!Number.isInteger(n) || n <= 0)
            throw new CliError(`--${name} must be a positive whole number`, 2);
          return n;
        };
        const user = (
          prompt ? (await prompt.ask("SSH user on the nodes", opts.user as string)) || opts.user : opts.user
        ) as string;
        const result = await runInit(
          {
            nodes: specs.map(parseNodeSpec),
            user,
            output,
            key: (opts.key as string | undefined) ?? `${dirname(output)}/id_ed25519`,
            acceptHostKeys: accept,
            trustNewHostKeys: opts.trustNewHostKeys === true,
            ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl as string } : {}),
            ...(opts.mqttUsername ? { mqttUsername: opts.mqttUsername as string } : {}),
            ...(opts.mqttPasswordFile ? { mqttPasswordFile: opts.mqttPasswordFile as string } : {}),
            ...(opts.baseTopic ? { baseTopic: opts.baseTopic as string } : {}),
            serverHost: opts.serverHost as string,
            serverPort: number("server-port", opts.serverPort),
            stateDir: opts.stateDir as string,
            clusterName: opts.clusterName as string,
            ...(opts.dataDir ? { dataDir: opts.dataDir as string } : {}),
            service: opts.service as string,
            force: opts.force === true,
            connectTimeoutMs: number("connect-timeout", opts.connectTimeout) * 1000,
          },
          prompt,
          print,
        );
        printResult(result, print);
        if (globals().json) process.stdout.write(`${JSON.stringify({ ...result, log: lines }, null, 2)}\n`);
        if (!result.written) process.exitCode = 1;
      } finally {
        prompt?.close();
      }
    });
}
