/**
 * A real OpenSSH sshd for integration tests: Debian's /usr/sbin/sshd run in the foreground
 * (`-D -e -f <temp sshd_config>`) on 127.0.0.1 and a free port, with its own freshly generated
 * ed25519 host key and a freshly generated client key that is its only authorized key.
 *
 *   const sshd = await startSshd();                    // options: user, extraConfig, port, wrap
 *   const transport = new SshTransport({ nodeId: "n1", ssh: sshd.sshConfig(), logger });
 *   sshd.fingerprint                                   // `ssh-keygen -lf` of the host key: the oracle
 *   sshd.homeDir                                       // the login user's home, writable by it
 *   await sshd.restart();                              // same port, same keys, sessions dropped
 *   await sshd.replaceHostKey();                       // new host key, restarted; returns its fingerprint
 *   await sshd.freeze(); await sshd.thaw();            // SIGSTOP/SIGCONT the daemon and its sessions
 *   await sshd.dispose();                              // stop and delete the temp directory
 *
 * The login user, by default, is a dedicated unprivileged user ("z2mha-test", /bin/sh, home in the
 * temp directory) like a real node's "zigbee" user. It is not added to the host: sshd runs in a
 * private mount namespace (`unshare --mount`) where /etc/passwd and /etc/group are bind-mounted
 * copies with that one extra line, so only sshd and the sessions it starts know the user. Pass
 * `user: "root"` (or any existing user) to log in as that user instead; note that OpenSSH refuses
 * the "signal" channel request for root logins (root sessions run without privilege separation).
 *
 * sshd needs root (privilege separation, the bind mounts) and /run/sshd, which is created if
 * missing; nothing else on the host is changed. `stop()` behaves like the host going away: the
 * daemon and every session process it started are killed, so clients see their connections drop.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { SshNodeConfig } from "../../sidecar/node/ssh.js";

const run = promisify(execFile);

export const SSHD_BINARY = "/usr/sbin/sshd";

export interface SshdOptions {
  /** Default 127.0.0.1. */
  listenAddress?: string;
  /** Default: a free port picked at start. */
  port?: number;
  /** An existing user to log in as (e.g. "root"); default: a dedicated unprivileged test user. */
  user?: string;
  /**
   * Login shell of the dedicated user (default /bin/sh). "busybox-ash" gives busybox's ash, the
   * shell of an Alpine node, through a symlink named ash (busybox picks the applet by name).
   */
  shell?: string;
  /** Extra sshd_config lines, e.g. ["MaxSessions 2"]; they take precedence over the defaults (no Match blocks). */
  extraConfig?: string[];
  /** Argument prefix to run sshd under, e.g. ["ip", "netns", "exec", "lab-n1"] (must exec, not fork). */
  wrap?: string[];
}

export interface Sshd {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  /** The login user's home directory: a place the user can write. */
  readonly homeDir: string;
  /** The temp directory holding config, keys and authorized_keys. */
  readonly dir: string;
  readonly configPath: string;
  readonly hostKeyPath: string;
  readonly hostPubKeyPath: string;
  readonly clientKeyPath: string;
  readonly clientPubKeyPath: string;
  readonly authorizedKeysPath: string;
  /** "SHA256:…" of the current host key, as printed by `ssh-keygen -lf`. */
  readonly fingerprint: string;
  /** Pid of the listening daemon, undefined while stopped. */
  readonly pid: number | undefined;
  /** An `ssh` block for the config schema pointing at this server; override any field. */
  sshConfig(overrides?: Partial<SshNodeConfig>): SshNodeConfig;
  /** What sshd logged (stderr), for diagnostics in failed tests. */
  logs(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGSTOP the daemon and all its session processes: a host that hangs without closing sockets. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Generates a new host key, restarts on the same port, returns the new fingerprint. */
  replaceHostKey(): Promise<string>;
  dispose(): Promise<void>;
}

/** Generates an unencrypted (or passphrase-protected) ed25519 key pair at `path` and `path.pub`. */
export async function generateKeyPair(path: string, options: { passphrase?: string; comment?: string } = {}) {
  await rm(path, { force: true });
  await rm(`${path}.pub`, { force: true });
  await run("ssh-keygen", [
    "-q",
    "-t",
    "ed25519",
    "-N",
    options.passphrase ?? "",
    "-C",
    options.comment ?? "test",
    "-f",
    path,
  ]);
  return { privateKeyPath: path, publicKeyPath: `${path}.pub` };
}

/** The OpenSSH SHA256 fingerprint of a public key file, computed by ssh-keygen itself. */
export async function fingerprintOf(publicKeyPath: string): Promise<string> {
  const { stdout } = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyPath]);
  const match = /SHA256:[A-Za-z0-9+/]+/.exec(stdout);
  if (!match) throw new Error(`unexpected ssh-keygen -lf output: ${stdout}`);
  return match[0];
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** All descendants of `pid`, from /proc, children before grandchildren. */
export async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => undefined);
    if (!stat) continue;
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const children = parents.get(ppid) ?? [];
    children.push(Number(name));
    parents.set(ppid, children);
  }
  const result: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of parents.get(queue.shift() as number) ?? []) {
      result.push(child);
      queue.push(child);
    }
  }
  return result;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Already gone.
    }
  }
}

/**
 * SIGSTOPs `pid` and all its descendants and returns them. A process can be forking while we scan
 * (sshd forks a session's unprivileged child right after authentication), so scan again after
 * stopping until a scan finds nothing new: a stopped process forks no more.
 */
async function stopTree(pid: number): Promise<number[]> {
  const stopped = new Set<number>([pid]);
  signal([pid], "SIGSTOP");
  for (;;) {
    const fresh = (await descendantsOf(pid)).filter((child) => !stopped.has(child));
    if (fresh.length === 0) return [...stopped];
    signal(fresh, "SIGSTOP");
    for (const child of fresh) stopped.add(child);
  }
}

async function openSshVersion(): Promise<number> {
  const { stderr } = await run("ssh", ["-V"]);
  const match = /OpenSSH_(\d+)\.(\d+)/.exec(stderr);
  return match ? Number(match[1]) + Number(match[2]) / 10 : 0;
}

interface LoginUser {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** Argument prefix that makes the user exist for sshd. */
  wrap: string[];
}

const TEST_USER = "z2mha-test";

async function existingUser(name: string): Promise<LoginUser> {
  const line = (await readFile("/etc/passwd", "utf8")).split("\n").find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`user ${name} does not exist on this host`);
  const [, , uid, gid, , home] = line.split(":");
  return { user: name, uid: Number(uid), gid: Number(gid), home: home ?? "/", wrap: [] };
}

/** A user that exists only inside sshd's private mount namespace (see the comment at the top). */
async function dedicatedUser(dir: string, shell: string): Promise<LoginUser> {
  let loginShell = shell;
  if (shell === "busybox-ash") {
    loginShell = join(dir, "ash");
    await symlink((await run("sh", ["-c", "command -v busybox"])).stdout.trim(), loginShell);
  }
  const passwd = await readFile("/etc/passwd", "utf8");
  const group = await readFile("/etc/group", "utf8");
  const taken = new Set(
    [...passwd.split("\n"), ...group.split("\n")]
      .map((line) => Number(line.split(":")[2]))
      .filter(Number.isFinite),
  );
  let id = 47_000;
  while (taken.has(id)) id++;
  const home = join(dir, "home");
  await mkdir(home, { mode: 0o755 });
  await chown(home, id, id);
  const passwdPath = join(dir, "passwd");
  const groupPath = join(dir, "group");
  await writeFile(
    passwdPath,
    `${passwd.replace(/\n?$/, "\n")}${TEST_USER}:x:${id}:${id}:z2mha test:${home}:${loginShell}\n`,
  );
  await writeFile(groupPath, `${group.replace(/\n?$/, "\n")}${TEST_USER}:x:${id}:\n`);
  await chmod(passwdPath, 0o644);
  await chmod(groupPath, 0o644);
  const script = 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"';
  return {
    user: TEST_USER,
    uid: id,
    gid: id,
    home,
    wrap: [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      script,
      "sh",
      passwdPath,
      groupPath,
    ],
  };
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const host = options.listenAddress ?? "127.0.0.1";
  const port = options.port ?? (await freePort(host));
  const dir = await mkdtemp(join(tmpdir(), "z2mha-sshd-"));
  // The login user must be able to reach its home and read authorized_keys inside this directory.
  await chmod(dir, 0o755);
  const login =
    options.user === undefined
      ? await dedicatedUser(dir, options.shell ?? "/bin/sh")
      : await existingUser(options.user);
  const { user } = login;
  const paths = {
    configPath: join(dir, "sshd_config"),
    hostKeyPath: join(dir, "ssh_host_ed25519_key"),
    hostPubKeyPath: join(dir, "ssh_host_ed25519_key.pub"),
    clientKeyPath: join(dir, "client_ed25519"),
    clientPubKeyPath: join(dir, "client_ed25519.pub"),
    authorizedKeysPath: join(dir, "authorized_keys"),
  };
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  await generateKeyPair(paths.hostKeyPath, { comment: "test-host" });
  await generateKeyPair(paths.clientKeyPath, { comment: "test-client" });
  await writeFile(paths.authorizedKeysPath, await readFile(paths.clientPubKeyPath), { mode: 0o644 });
  // sshd_config keeps the first value it reads for an option, so the caller's lines go first.
  const config = [
    ...(options.extraConfig ?? []),
    `ListenAddress ${host}`,
    `Port ${port}`,
    `HostKey ${paths.hostKeyPath}`,
    `AuthorizedKeysFile ${paths.authorizedKeysPath}`,
    "PidFile none",
    "UsePAM no",
    "StrictModes no",
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    `AllowUsers ${user}`,
    "Subsystem sftp internal-sftp",
    "PrintMotd no",
    "UseDNS no",
    "LogLevel VERBOSE",
    // OpenSSH 9.8+ penalises sources that fail auth; tests fail auth on purpose, from 127.0.0.1.
    ...((await openSshVersion()) >= 9.8 ? ["PerSourcePenalties no"] : []),
  ];
  await writeFile(paths.configPath, `${config.join("\n")}\n`);

  let child: ChildProcess | undefined;
  let fingerprint = await fingerprintOf(paths.hostPubKeyPath);
  const log: string[] = [];
  let logSize = 0;
  const remember = (text: string) => {
    log.push(text);
    logSize += text.length;
    while (logSize > 1_000_000 && log.length > 1) logSize -= (log.shift() as string).length;
  };

  const start = async (): Promise<void> => {
    if (child) return;
    const argv = [...(options.wrap ?? []), ...login.wrap, SSHD_BINARY, "-D", "-e", "-f", paths.configPath];
    const proc = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      let seen = "";
      const onData = (data: Buffer) => {
        const text = data.toString();
        remember(text);
        seen += text;
        if (seen.includes("Server listening on")) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        child = undefined;
        reject(new Error(`sshd exited with ${code} before listening:\n${seen}`));
      };
      const cleanup = () => {
        proc.stderr?.off("data", onData);
        proc.off("exit", onExit);
        proc.stderr?.on("data", (data: Buffer) => remember(data.toString()));
      };
      proc.stderr?.on("data", onData);
      proc.once("exit", onExit);
    });
    proc.once("exit", () => {
      if (child === proc) child = undefined;
    });
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc?.pid) return;
    const exited =
      proc.exitCode !== null || proc.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    signal(await stopTree(proc.pid), "SIGKILL");
    await exited;
    child = undefined;
  };

  const freeze = async () => {
    const pid = child?.pid;
    if (!pid) throw new Error("sshd is not running");
    await stopTree(pid);
  };

  const thaw = async () => {
    const pid = child?.pid;
    if (!pid) throw new Error("sshd is not running");
    signal([pid, ...(await descendantsOf(pid))], "SIGCONT");
  };

  await start();

  return {
    host,
    port,
    user,
    uid: login.uid,
    gid: login.gid,
    homeDir: login.home,
    dir,
    ...paths,
    get fingerprint() {
      return fingerprint;
    },
    get pid() {
      return child?.pid;
    },
    sshConfig: (overrides = {}) => ({
      host,
      port,
      user,
      private_key: paths.clientKeyPath,
      passphrase: undefined,
      host_key: fingerprint,
      connect_timeout: 5_000,
      keepalive_interval: 5_000,
      ...overrides,
    }),
    logs: () => log.join(""),
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    freeze,
    thaw,
    replaceHostKey: async () => {
      await stop();
      await generateKeyPair(paths.hostKeyPath, { comment: "test-host" });
      fingerprint = await fingerprintOf(paths.hostPubKeyPath);
      await start();
      return fingerprint;
    },
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
