/**
 * Run inside the lab's controller by the bench: how long an SSH connection takes to open, and how
 * long one command takes on a connection that is already open (the sidecar keeps one per node).
 *
 *   node --import tsx test/bench/ssh-timing.ts HOST USER KEY RUNS -- CMD...
 *
 * Prints {"connect_ms": n, "exec_ms": [n, ...]} on stdout. Lab hosts only: the host key is not
 * checked here (the lab's own tests pin it; this measures time).
 */
import { readFileSync } from "node:fs";
import { Client } from "ssh2";

const [host, user, key, runsText, separator, ...command] = process.argv.slice(2);
if (!host || !user || !key || !runsText || separator !== "--" || command.length === 0) {
  process.stderr.write("usage: ssh-timing.ts HOST USER KEY RUNS -- CMD...\n");
  process.exit(2);
}
const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

const client = new Client();
const started = performance.now();
client.on("ready", async () => {
  const connect = performance.now() - started;
  const times: number[] = [];
  for (let i = 0; i < Number(runsText); i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) => {
      client.exec(command.map(quote).join(" "), (error, stream) => {
        if (error) return reject(error);
        stream.on("close", () => resolve());
        stream.resume();
        stream.stderr.resume();
      });
    });
    times.push(performance.now() - t);
  }
  process.stdout.write(`${JSON.stringify({ connect_ms: connect, exec_ms: times })}\n`);
  client.end();
});
client.on("error", (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
client.connect({ host, port: 22, username: user, privateKey: readFileSync(key), hostVerifier: () => true });
