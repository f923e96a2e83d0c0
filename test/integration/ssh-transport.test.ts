/**
 * The SSH transport against a real OpenSSH sshd on 127.0.0.1 (test/helpers/sshd.ts): the sidecar's
 * only way to reach a node. Disruptive situations (restarts, a hung server, a new host key) get a
 * server of their own; the rest share one.
 */

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  statfs,
  symlink,
  writeFile,
} from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OperationRunner } from "../../sidecar/cluster/runner.js";
import { Secret } from "../../sidecar/config/secret.js";
import {
  type ConnectionState,
  type ConnectionStateChange,
  isNotFound,
  isSshError,
  type SshError,
  type SshLogger,
  SshTransport,
  type SshTransportOptions,
} from "../../sidecar/node/ssh.js";
import { EventBus } from "../../sidecar/notify/bus.js";
import { Journal } from "../../sidecar/store/journal.js";
import { fingerprintOf, freePort, generateKeyPair, type Sshd, startSshd } from "../helpers/sshd.js";

const run = promisify(execFile);

/** A pino-shaped logger that keeps every line, so tests can look for leaked secrets. */
function captureLogger(): SshLogger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (fields: object, message: string) => {
    lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  };
  return { lines, debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

const transports: SshTransport[] = [];

function transportFor(sshd: Sshd, overrides: Partial<SshTransportOptions> = {}, logger = captureLogger()) {
  const transport = new SshTransport({ nodeId: "node1", ssh: sshd.sshConfig(), logger, ...overrides });
  transports.push(transport);
  return transport;
}

afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
});

async function rejection(promise: Promise<unknown>): Promise<SshError> {
  try {
    await promise;
  } catch (error) {
    if (isSshError(error)) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}

function nextState(transport: SshTransport, wanted: ConnectionState): Promise<ConnectionStateChange> {
  return new Promise((resolve) => {
    const stop = transport.onStateChange((change) => {
      if (change.state === wanted) {
        stop();
        resolve(change);
      }
    });
  });
}

/** Alive means present in /proc and not a zombie waiting for its parent. */
async function isRunning(pid: number): Promise<boolean> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return text !== undefined && text.slice(text.lastIndexOf(")") + 2)[0] !== "Z";
}

async function eventually(check: () => Promise<boolean>, what: string, attempts = 50): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`never happened: ${what}`);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** A directory the node's SSH user owns, visible to the test through the shared file system. */
async function userDir(sshd: Sshd, name: string): Promise<string> {
  const dir = join(sshd.homeDir, name);
  await mkdir(dir, { recursive: true });
  await chown(dir, sshd.uid, sshd.gid);
  return dir;
}

const HOSTILE = [
  "",
  "two words",
  "it's",
  '"double"',
  "$(touch /tmp/z2mha-pwned)",
  "`touch /tmp/z2mha-pwned`",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell expansion is the test input
  "$HOME ${PATH}",
  "a; touch /tmp/z2mha-pwned",
  "a && b || c | d",
  "line one\nline two\n",
  "tab\there\r",
  "back\\slash \\' '\\''",
  "*?[a-z]{x,y}~",
  "#not a comment",
  "-n",
  "日本語 🐝",
];

describe("SSH transport against a real sshd", () => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.dispose();
  });

  describe("running commands", () => {
    it("passes hostile arguments to the remote command unchanged", async () => {
      await rm("/tmp/z2mha-pwned", { force: true });
      const transport = transportFor(sshd);
      const result = await transport.exec(["printf", "%s\\0", ...HOSTILE]);
      expect(result.code).toBe(0);
      expect(result.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
      expect(existsSync("/tmp/z2mha-pwned")).toBe(false);
    });

    it("runs through the node user's POSIX login shell and as that user", async () => {
      const transport = transportFor(sshd);
      const result = await transport.exec(["sh", "-c", 'printf "%s %s" "$(id -u)" "$0"', "x y"]);
      expect(result.stdout).toBe(`${sshd.uid} x y`);
    });

    it("reports exit codes and terminating signals", async () => {
      const transport = transportFor(sshd);
      expect((await transport.exec(["sh", "-c", "exit 7"])).code).toBe(7);
      expect((await transport.exec(["false"])).code).toBe(1);
      const killed = await transport.exec(["sh", "-c", "kill -TERM $$"]);
      expect(killed).toMatchObject({ code: null, signal: "SIGTERM", timedOut: false });
      const missing = await transport.exec(["no-such-program-z2mha"]);
      expect(missing.code).toBe(127);
      expect(missing.stderr).toMatch(/not found/);
    });

    it("feeds stdin when asked and closes it otherwise", async () => {
      const transport = transportFor(sshd);
      expect((await transport.exec(["cat"], { input: "secret-ish\nvalue" })).stdout).toBe(
        "secret-ish\nvalue",
      );
      expect((await transport.exec(["cat"], { timeoutMs: 5_000 })).stdout).toBe("");
    });

    it("runs in the requested working directory, quoted", async () => {
      const dir = await userDir(sshd, "dir with 'quotes' and $(x)");
      const transport = transportFor(sshd);
      expect((await transport.exec(["pwd"], { cwd: dir })).stdout).toBe(`${dir}\n`);
    });

    it("bounds captured output, keeps its end and says it truncated", async () => {
      const transport = transportFor(sshd);
      const result = await transport.exec(
        ["sh", "-c", "seq 1 100000; seq 1 50000 >&2; echo 'the real error' >&2"],
        { maxOutputBytes: 1_000 },
      );
      expect(result.code).toBe(0);
      expect(result.stdoutTruncated).toBe(true);
      expect(result.stderrTruncated).toBe(true);
      expect(Buffer.byteLength(result.stdout)).toBeLessThanOrEqual(1_000);
      expect(result.stdout.endsWith("99999\n100000\n")).toBe(true);
      expect(result.stderr.endsWith("50000\nthe real error\n")).toBe(true);
      const small = await transport.exec(["echo", "short"], { maxOutputBytes: 1_000 });
      expect(small).toMatchObject({ stdout: "short\n", stdoutTruncated: false, stderrTruncated: false });
    });

    it("kills a command that outlives its timeout, children included", async () => {
      const dir = await userDir(sshd, "timeout");
      const transport = transportFor(sshd);
      const result = await transport.exec(
        ["sh", "-c", 'echo $$ > "$1/shell"; sleep 300 & echo $! > "$1/child"; wait', "sh", dir],
        { timeoutMs: 500 },
      );
      expect(result.timedOut).toBe(true);
      expect(result.code).toBeNull();
      const shell = Number(await readFile(join(dir, "shell"), "utf8"));
      const child = Number(await readFile(join(dir, "child"), "utf8"));
      await eventually(
        async () => !(await isRunning(shell)) && !(await isRunning(child)),
        "remote processes gone",
      );
    });

    it("an abort ends the remote command (TERM) and rejects with the abort's reason", async () => {
      const dir = await userDir(sshd, "abort");
      const transport = transportFor(sshd);
      const controller = new AbortController();
      const running = transport.exec(
        ["sh", "-c", 'echo $$ > "$1/shell"; sleep 300 & echo $! > "$1/child"; wait', "sh", dir],
        { timeoutMs: 60_000, signal: controller.signal },
      );
      await eventually(async () => existsSync(join(dir, "child")), "the command to start");
      controller.abort(new Error("step timed out"));
      await expect(running).rejects.toThrow("step timed out");
      const shell = Number(await readFile(join(dir, "shell"), "utf8"));
      const child = Number(await readFile(join(dir, "child"), "utf8"));
      // The promise settles only once the channel closed: the processes are already gone.
      expect(await isRunning(shell)).toBe(false);
      await eventually(async () => !(await isRunning(child)), "the child gone");
    });

    it("a runner step that times out while its remote command runs leaves nothing running on the node", async () => {
      const dir = await userDir(sshd, "step");
      const transport = transportFor(sshd);
      const journal = Journal.open(join(dir, "journal.jsonl"));
      const runner = new OperationRunner(journal, new EventBus());
      const op = await runner.run({
        kind: "sync",
        mutating: true,
        trigger: "test",
        params: {},
        ctx: {},
        steps: [
          {
            key: "slow",
            name: "slow remote command",
            timeoutMs: 1_000,
            run: async ({ signal }) => {
              await transport.exec(["sh", "-c", 'echo $$ > "$1/pid"; exec sleep 300', "sh", dir], {
                timeoutMs: 600_000,
                signal,
              });
            },
          },
        ],
      });
      expect(op.status).toBe("failed");
      expect(op.steps[0]?.error).toMatch(/timed out after 1000 ms/);
      const pid = Number(await readFile(join(dir, "pid"), "utf8"));
      // The runner waited for the step to wind down before ending it.
      expect(await isRunning(pid)).toBe(false);
      journal.close();
    });

    it("escalates to KILL when the command ignores TERM", async () => {
      const dir = await userDir(sshd, "stubborn");
      const transport = transportFor(sshd);
      const result = await transport.exec(
        ["sh", "-c", 'trap "" TERM; echo $$ > "$1/pid"; while :; do sleep 1; done', "sh", dir],
        { timeoutMs: 300 },
      );
      expect(result).toMatchObject({ timedOut: true, code: null, signal: "SIGKILL" });
      const pid = Number(await readFile(join(dir, "pid"), "utf8"));
      await eventually(async () => !(await isRunning(pid)), "stubborn process gone");
    });

    it("runs many commands at once over one connection, queueing past the server's session limit", async () => {
      const before = count(sshd.logs(), "Accepted publickey");
      const transport = transportFor(sshd);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          transport.exec(["sh", "-c", 'sleep 0.2; printf "%s" "$1"', "sh", `job ${i}`]),
        ),
      );
      expect(results.map((result) => result.stdout)).toEqual(
        Array.from({ length: 20 }, (_, i) => `job ${i}`),
      );
      // Twenty callers arrived while disconnected: they shared one connect, then one connection.
      expect(count(sshd.logs(), "Accepted publickey") - before).toBe(1);
    });

    it("refuses an argument no command line can carry, before sending anything", async () => {
      const transport = transportFor(sshd);
      await expect(transport.exec(["echo", "a\0b"])).rejects.toThrow(/NUL/);
      expect(transport.state).toBe("disconnected");
    });
  });

  describe("host key pinning", () => {
    it("refuses a server whose host key is not the pinned one, naming both fingerprints", async () => {
      const other = await generateKeyPair(join(sshd.dir, "unrelated_host_key"));
      const pinned = await fingerprintOf(other.publicKeyPath);
      const before = sshd.logs();
      const transport = transportFor(sshd, { ssh: sshd.sshConfig({ host_key: pinned }) });
      const error = await rejection(transport.exec(["true"]));
      expect(error.kind).toBe("host-key-mismatch");
      expect(error.message).toContain("node1");
      expect(error.message).toContain(`127.0.0.1:${sshd.port}`);
      expect(error.message).toContain(pinned);
      expect(error.message).toContain(sshd.fingerprint);
      expect(error.message).toContain("ssh-keygen -lf");
      expect(transport.state).toBe("disconnected");
      // Refused before authentication, and not retried.
      const after = sshd.logs().slice(before.length);
      expect(count(after, "Accepted publickey")).toBe(0);
      expect(count(after, "Connection from")).toBe(1);
    });

    it("matches a node that has several host keys by its ed25519 key", async () => {
      const ecdsa = join(sshd.dir, "extra_ecdsa_host_key");
      await run("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa]);
      const multi = await startSshd({ extraConfig: [`HostKey ${ecdsa}`] });
      try {
        const transport = transportFor(multi);
        expect((await transport.exec(["true"])).code).toBe(0);
        const pinnedEcdsa = transportFor(multi, {
          ssh: multi.sshConfig({ host_key: await fingerprintOf(`${ecdsa}.pub`) }),
        });
        const error = await rejection(pinnedEcdsa.connect());
        expect(error.kind).toBe("host-key-mismatch");
        expect(error.message).toContain(`ssh-ed25519 key ${multi.fingerprint}`);
      } finally {
        await multi.dispose();
      }
    });

    it("accepts the pin with or without base64 padding", async () => {
      const transport = transportFor(sshd, { ssh: sshd.sshConfig({ host_key: `${sshd.fingerprint}=` }) });
      expect((await transport.exec(["true"])).code).toBe(0);
    });
  });

  describe("authentication and reachability", () => {
    it("reports a refused client key as auth-failed, without retrying", async () => {
      const wrong = await generateKeyPair(join(sshd.dir, "not_authorized"));
      const before = sshd.logs();
      const transport = transportFor(sshd, { ssh: sshd.sshConfig({ private_key: wrong.privateKeyPath }) });
      const error = await rejection(transport.connect());
      expect(error.kind).toBe("auth-failed");
      expect(error.message).toContain(wrong.privateKeyPath);
      expect(error.message).toContain(sshd.user);
      expect(count(sshd.logs().slice(before.length), "Connection from")).toBe(1);
    });

    it("reports a missing key file as auth-failed", async () => {
      const transport = transportFor(sshd, {
        ssh: sshd.sshConfig({ private_key: "/nonexistent/id_ed25519" }),
      });
      const error = await rejection(transport.connect());
      expect(error.kind).toBe("auth-failed");
      expect(error.message).toMatch(/cannot read private key file \/nonexistent\/id_ed25519: ENOENT/);
    });

    it("uses an encrypted key with its passphrase and never logs either", async () => {
      const passphrase = "correct horse battery staple";
      const key = await generateKeyPair(join(sshd.dir, "encrypted"), { passphrase });
      await writeFile(sshd.authorizedKeysPath, await readFile(key.publicKeyPath), { flag: "a" });
      const logger = captureLogger();
      const without = transportFor(
        sshd,
        { ssh: sshd.sshConfig({ private_key: key.privateKeyPath }) },
        logger,
      );
      const error = await rejection(without.connect());
      expect(error.kind).toBe("auth-failed");
      expect(error.message).toMatch(/passphrase/);
      const wrongPass = transportFor(
        sshd,
        { ssh: sshd.sshConfig({ private_key: key.privateKeyPath, passphrase: new Secret("wrong") }) },
        logger,
      );
      expect((await rejection(wrongPass.connect())).kind).toBe("auth-failed");
      const withPass = transportFor(
        sshd,
        { ssh: sshd.sshConfig({ private_key: key.privateKeyPath, passphrase: new Secret(passphrase) }) },
        logger,
      );
      expect((await withPass.exec(["true"])).code).toBe(0);
      const privateKey = await readFile(key.privateKeyPath, "utf8");
      const keyBody = privateKey.split("\n")[1] as string;
      const everything = [...logger.lines, error.message].join("\n");
      expect(everything).not.toContain(passphrase);
      expect(everything).not.toContain(keyBody);
    });

    it("gives up on a closed port quickly, after a bounded number of attempts", async () => {
      const port = await freePort();
      const transport = transportFor(sshd, {
        ssh: sshd.sshConfig({ port }),
        connectAttempts: 2,
        retryDelayMs: 50,
      });
      const states: ConnectionState[] = [];
      transport.onStateChange((change) => states.push(change.state));
      const error = await rejection(transport.exec(["true"]));
      expect(error.kind).toBe("unreachable");
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(states).toEqual(["connecting", "disconnected"]);
    });

    it("honours connect_timeout against a server that accepts but never speaks SSH", {
      timeout: 10_000,
    }, async () => {
      const silent: Server = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const port = (silent.address() as { port: number }).port;
      try {
        const transport = transportFor(sshd, {
          ssh: sshd.sshConfig({ port, connect_timeout: 300 }),
          connectAttempts: 1,
        });
        const error = await rejection(transport.connect());
        expect(error.kind).toBe("unreachable");
        expect(error.message).toMatch(/no SSH session within 300ms/);
      } finally {
        silent.close();
      }
    });
  });

  describe("files over SFTP", () => {
    it("writes a file atomically with the mode asked for, and reads it back", async () => {
      const dir = await userDir(sshd, "write");
      const path = join(dir, "configuration.yaml");
      const transport = transportFor(sshd);
      const text = "homeassistant: true\nfrontend:\n  host: 192.168.34.123\n";
      const written = await transport.writeFileAtomic(path, text, { mode: 0o600 });
      expect(written).toEqual({ size: Buffer.byteLength(text), sha256: sha256(Buffer.from(text)) });
      expect(await readFile(path, "utf8")).toBe(text);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await transport.readFile(path)).toString()).toBe(text);
      // Replacing keeps the mode of the file it replaces.
      await transport.writeFileAtomic(path, "v2\n");
      expect(await readFile(path, "utf8")).toBe("v2\n");
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readdir(dir)).toEqual(["configuration.yaml"]);
    });

    it("round-trips 10 MiB of random bytes with matching sha256 both ways", async () => {
      const local = await mkdtemp(join(tmpdir(), "z2mha-sftp-"));
      try {
        const data = randomBytes(10 * 1024 * 1024);
        await writeFile(join(local, "upload.bin"), data);
        const remote = join(await userDir(sshd, "big"), "database.db");
        const transport = transportFor(sshd);
        const up = await transport.put(join(local, "upload.bin"), remote, { mode: 0o640 });
        expect(up).toEqual({ size: data.length, sha256: sha256(data) });
        expect(sha256(await readFile(remote))).toBe(sha256(data));
        const down = await transport.get(remote, join(local, "download.bin"));
        expect(down.size).toBe(data.length);
        expect(down.sha256).toBe(sha256(data));
        expect(down.mtimeMs).toBe(Math.floor((await stat(remote)).mtimeMs / 1000) * 1000);
        expect(sha256(await readFile(join(local, "download.bin")))).toBe(sha256(data));
        expect((await readdir(local)).sort()).toEqual(["download.bin", "upload.bin"]);
      } finally {
        await rm(local, { recursive: true, force: true });
      }
    });

    it("leaves the old file untouched when the target directory is read-only", async () => {
      const dir = await userDir(sshd, "readonly");
      const path = join(dir, "state.json");
      await writeFile(path, '{"old":true}');
      await chown(path, sshd.uid, sshd.gid);
      await chmod(dir, 0o555);
      try {
        const transport = transportFor(sshd);
        const error = await rejection(transport.writeFileAtomic(path, '{"new":true}'));
        expect(error.kind).toBe("sftp");
        expect(error.message).toMatch(/Permission denied/);
        expect(await readFile(path, "utf8")).toBe('{"old":true}');
        expect(await readdir(dir)).toEqual(["state.json"]);
      } finally {
        await chmod(dir, 0o755);
      }
    });

    it("removes its temp file when the final rename fails", async () => {
      const dir = await userDir(sshd, "rename-fails");
      const target = join(dir, "occupied");
      await mkdir(join(target, "child"), { recursive: true });
      await chown(target, sshd.uid, sshd.gid);
      const transport = transportFor(sshd);
      const error = await rejection(transport.writeFileAtomic(target, "data"));
      expect(error.kind).toBe("sftp");
      expect((await stat(target)).isDirectory()).toBe(true);
      expect(await readdir(dir)).toEqual(["occupied"]);
    });

    it("refuses a file larger than readFile's limit", async () => {
      const path = join(await userDir(sshd, "limit"), "big.log");
      await writeFile(path, Buffer.alloc(5_000));
      const transport = transportFor(sshd);
      const error = await rejection(transport.readFile(path, { maxBytes: 4_096 }));
      expect(error.kind).toBe("sftp");
      expect(error.message).toMatch(/larger than the limit of 4096 bytes/);
    });

    it("refuses to download a file that changes while it is read", async () => {
      const dir = await userDir(sshd, "changing");
      const path = join(dir, "state.json");
      const initial = 2 * 1024 * 1024;
      await writeFile(path, Buffer.alloc(initial, "x"));
      await chown(path, sshd.uid, sshd.gid);
      const local = await mkdtemp(join(tmpdir(), "z2mha-sftp-"));
      const transport = transportFor(sshd);
      const writer = transport.exec(["sh", "-c", 'while :; do echo appended >> "$1"; done', "sh", path], {
        timeoutMs: 3_000,
      });
      try {
        await eventually(async () => (await stat(path)).size > initial, "the writer is appending");
        const error = await rejection(transport.get(path, join(local, "state.json")));
        expect(error.kind).toBe("sftp");
        expect(error.message).toMatch(/changed while it was read/);
        expect(await readdir(local)).toEqual([]);
      } finally {
        expect((await writer).timedOut).toBe(true);
        await rm(local, { recursive: true, force: true });
      }
    });

    it("reports a missing file as not found and leaves no local temp file", async () => {
      const local = await mkdtemp(join(tmpdir(), "z2mha-sftp-"));
      try {
        const transport = transportFor(sshd);
        const error = await rejection(transport.get(join(sshd.homeDir, "nope"), join(local, "nope")));
        expect(isNotFound(error)).toBe(true);
        expect(error.message).toContain(join(sshd.homeDir, "nope"));
        expect(await readdir(local)).toEqual([]);
        expect(await transport.exists(join(sshd.homeDir, "nope"))).toBe(false);
      } finally {
        await rm(local, { recursive: true, force: true });
      }
    });

    it("creates, lists, renames and deletes trees without following symlinks", async () => {
      const base = await userDir(sshd, "tree");
      const outside = await userDir(sshd, "outside");
      await writeFile(join(outside, "keep.txt"), "keep");
      const transport = transportFor(sshd);
      const deep = join(base, "a", "b", "c");
      await transport.mkdirp(deep, { mode: 0o750 });
      await transport.mkdirp(deep); // already there: fine
      expect((await transport.stat(deep)).type).toBe("directory");
      await transport.writeFileAtomic(join(deep, "f.txt"), "x");
      await symlink(outside, join(base, "a", "link"));
      const listing = await transport.readdir(join(base, "a"));
      expect(listing.map((entry) => [entry.name, entry.stats.type])).toEqual([
        ["b", "directory"],
        ["link", "symlink"],
      ]);
      expect((await transport.lstat(join(base, "a", "link"))).type).toBe("symlink");
      expect((await transport.stat(join(base, "a", "link"))).type).toBe("directory");
      await transport.rename(join(deep, "f.txt"), join(deep, "g.txt"));
      expect(await transport.exists(join(deep, "g.txt"))).toBe(true);
      await transport.writeFileAtomic(join(deep, "h.txt"), "h");
      await transport.rename(join(deep, "h.txt"), join(deep, "g.txt")); // replaces
      expect(await readFile(join(deep, "g.txt"), "utf8")).toBe("h");
      await transport.unlink(join(deep, "g.txt"));
      await transport.rmdir(deep);
      expect(await transport.exists(deep)).toBe(false);

      await transport.rmrf(join(base, "a"));
      expect(await transport.exists(join(base, "a"))).toBe(false);
      expect(await readFile(join(outside, "keep.txt"), "utf8")).toBe("keep");
      await transport.rmrf(join(base, "a")); // already gone: fine
      await expect(transport.rmrf("/")).rejects.toThrow(/refusing/);
      await expect(transport.rmrf("tree")).rejects.toThrow(/absolute/);
      await expect(transport.rmrf(`${base}/../tree`)).rejects.toThrow(/refusing/);
    });

    it("refuses to mkdirp through a file", async () => {
      const base = await userDir(sshd, "mkdirp-file");
      await writeFile(join(base, "file"), "");
      const transport = transportFor(sshd);
      const error = await rejection(transport.mkdirp(join(base, "file", "sub")));
      expect(error.message).toMatch(/exists and is not a directory/);
    });

    it("measures free space, over SFTP and with df, matching the local file system", async () => {
      const transport = transportFor(sshd);
      const local = await statfs(sshd.homeDir);
      const viaSftp = await transport.statvfs(sshd.homeDir);
      const viaDf = await transport.statvfs(sshd.homeDir, { via: "df" });
      expect(viaSftp.source).toBe("statvfs");
      expect(viaDf.source).toBe("df");
      expect(viaSftp.totalBytes).toBe(local.blocks * local.bsize);
      expect(viaDf.totalBytes).toBe(viaSftp.totalBytes);
      expect(viaSftp.availableBytes).toBeGreaterThan(0);
      expect(viaSftp.freeBytes).toBeGreaterThanOrEqual(viaSftp.availableBytes);
    });
  });
});

const LOGIN_SHELLS = [
  { name: "bash (a Debian or Raspberry Pi OS node)", shell: "/bin/bash" },
  ...(existsSync("/usr/bin/busybox") || existsSync("/bin/busybox")
    ? [{ name: "busybox ash (an Alpine node)", shell: "busybox-ash" }]
    : []),
];

describe.each(LOGIN_SHELLS)("a node whose login shell is $name", ({ shell }) => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd({ shell });
  });

  afterAll(async () => {
    await sshd?.dispose();
  });

  it("receives hostile arguments unchanged and reports exit codes", async () => {
    await rm("/tmp/z2mha-pwned", { force: true });
    const transport = transportFor(sshd);
    const result = await transport.exec(["printf", "%s\\0", ...HOSTILE]);
    expect(result.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
    expect(existsSync("/tmp/z2mha-pwned")).toBe(false);
    expect((await transport.exec(["sh", "-c", "exit 3"])).code).toBe(3);
  });
});

describe("an upload that runs out of disk space midway", () => {
  let sshd: Sshd;
  let mount: string;

  beforeAll(async () => {
    // The tmpfs must exist before sshd starts: sshd's private mount namespace is a copy taken then.
    mount = await mkdtemp(join(tmpdir(), "z2mha-smallfs-"));
    await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount]);
    sshd = await startSshd();
    await chown(mount, sshd.uid, sshd.gid);
  });

  afterAll(async () => {
    await sshd?.dispose();
    await run("umount", [mount]).catch(() => undefined);
    await rm(mount, { recursive: true, force: true });
  });

  it("fails, leaves the old file as it was and cleans up its temp file", async () => {
    const path = join(mount, "database.db");
    const old = randomBytes(100 * 1024);
    await writeFile(path, old);
    await chown(path, sshd.uid, sshd.gid);
    const local = await mkdtemp(join(tmpdir(), "z2mha-big-"));
    try {
      await writeFile(join(local, "new.db"), randomBytes(3 * 1024 * 1024));
      const transport = transportFor(sshd);
      const error = await rejection(transport.put(join(local, "new.db"), path));
      expect(error.kind).toBe("sftp");
      expect(sha256(await readFile(path))).toBe(sha256(old));
      expect(await readdir(mount)).toEqual(["database.db"]);
      // The space came back: a smaller write now succeeds.
      await transport.writeFileAtomic(path, "small");
      expect(await readFile(path, "utf8")).toBe("small");
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
});

describe("connection life", () => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.dispose();
  });

  it("reconnects on the next call after the server restarts", async () => {
    const transport = transportFor(sshd);
    const states: ConnectionState[] = [];
    transport.onStateChange((change) => states.push(change.state));
    expect((await transport.exec(["echo", "before"])).stdout).toBe("before\n");
    const down = nextState(transport, "disconnected");
    await sshd.restart();
    const change = await down;
    expect(change.error?.kind).toBe("closed");
    expect((await transport.exec(["echo", "after"])).stdout).toBe("after\n");
    expect(states).toEqual(["connecting", "connected", "disconnected", "connecting", "connected"]);
  });

  it("reconnects after an outage longer than one connect attempt", async () => {
    const transport = transportFor(sshd, { connectAttempts: 6, retryDelayMs: 200 });
    await transport.connect();
    const down = nextState(transport, "disconnected");
    await sshd.stop();
    await down;
    setTimeout(() => void sshd.start(), 700);
    expect((await transport.exec(["echo", "back"])).stdout).toBe("back\n");
  });

  it("fails a command cut off by a lost connection instead of inventing an exit code", async () => {
    const transport = transportFor(sshd);
    await transport.connect();
    const outcome = rejection(transport.exec(["sleep", "30"]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await sshd.restart();
    const error = await outcome;
    expect(error.kind).toBe("closed");
    expect(error.message).toMatch(/outcome is unknown/);
  });

  it("refuses to reconnect once the node's host key has changed", async () => {
    const transport = transportFor(sshd);
    await transport.connect();
    const oldFingerprint = sshd.fingerprint;
    const down = nextState(transport, "disconnected");
    const newFingerprint = await sshd.replaceHostKey();
    await down;
    expect(newFingerprint).not.toBe(oldFingerprint);
    const error = await rejection(transport.exec(["true"]));
    expect(error.kind).toBe("host-key-mismatch");
    expect(error.message).toContain(newFingerprint);
    expect(error.message).toContain(oldFingerprint);
    // With the config updated to the new key, the same server is accepted.
    const updated = transportFor(sshd, { ssh: sshd.sshConfig({ host_key: newFingerprint }) });
    expect((await updated.exec(["true"])).code).toBe(0);
  });

  it("refuses every call after close()", async () => {
    const transport = transportFor(sshd);
    await transport.connect();
    await transport.close();
    expect(transport.state).toBe("disconnected");
    expect((await rejection(transport.exec(["true"]))).kind).toBe("closed");
    expect((await rejection(transport.stat("/"))).kind).toBe("closed");
  });
});

describe("a server that hangs without closing the connection", () => {
  let sshd: Sshd;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.thaw().catch(() => undefined);
    await sshd?.dispose();
  });

  it("times out SFTP calls, is declared dead by keepalive, and is reconnected once it is back", async () => {
    const transport = transportFor(sshd, {
      ssh: sshd.sshConfig({ keepalive_interval: 300 }),
      keepaliveCountMax: 2,
      sftpTimeoutMs: 400,
    });
    await transport.stat(sshd.homeDir);
    const down = nextState(transport, "disconnected");
    await sshd.freeze();
    const stuck = await rejection(transport.stat(sshd.homeDir));
    expect(stuck.kind).toBe("timeout");
    expect(stuck.message).toContain(sshd.homeDir);
    const change = await down;
    expect(change.error?.message).toMatch(/Keepalive timeout/);
    await sshd.thaw();
    expect((await transport.stat(sshd.homeDir)).type).toBe("directory");
    expect(transport.state).toBe("connected");
  });
});
