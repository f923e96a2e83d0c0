/**
 * `npm run demo`: the lab up, the sidecar started in the controller on a config generated for the
 * lab, its API URL and token printed; stays in the foreground until Ctrl-C, which stops the sidecar
 * and takes the lab down.
 *
 *   npm run demo [-- --name z2mha --nodes 2 --port 8485]
 */
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_LAB_NAME, Lab, type RunningSidecar } from "./world.js";

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError("must be a whole number");
  return parsed;
}

const opts = new Command()
  .name("demo")
  .option("--name <name>", "lab instance", process.env.Z2MHA_LAB_NAME ?? DEFAULT_LAB_NAME)
  .option("--nodes <n>", "zigbee2mqtt nodes", integer, 2)
  .option("--port <port>", "the sidecar's API port (on the controller's link-local address)", integer, 8485)
  .parse()
  .opts<{ name: string; nodes: number; port: number }>();

/**
 * The URL is printed once the cluster is protected (a standby ready to take over): a switchover
 * asked for before the first sync staged one would fail, and a failover would have nothing to
 * restore from. Until then it says so, every few seconds.
 */
async function waitProtected(sidecar: RunningSidecar): Promise<void> {
  const started = Date.now();
  let said = "";
  for (;;) {
    const status = await fetch(`${sidecar.url}/api/v1/status`, {
      headers: { authorization: `Bearer ${sidecar.token}` },
      signal: AbortSignal.timeout(5_000),
    })
      .then((r) =>
        r.ok ? (r.json() as Promise<{ protection?: { protected: boolean; reason: string } }>) : undefined,
      )
      .catch(() => undefined);
    const protection = status?.protection;
    if (protection?.protected) {
      console.log(`protected: ${protection.reason} (after ${Math.round((Date.now() - started) / 1000)} s)`);
      return;
    }
    const now = protection?.reason ?? "the sidecar is starting";
    if (now !== said) console.log(`protecting… ${now}`);
    said = now;
    if (Date.now() - started > 180_000) {
      console.log("not protected after 3 min: look at `status` (the URL and token follow anyway)");
      return;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function main(): Promise<void> {
  let stopping: Promise<void> | undefined;
  let sidecar: RunningSidecar | undefined;
  let lab: Lab | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      console.log(`\n${signal}: stopping the sidecar and taking the lab down ...`);
      if (sidecar) await sidecar.stop().catch(() => null);
      await Lab.destroy(opts.name);
      console.log(`lab ${opts.name} is down`);
    })();
    return stopping;
  };
  const stopped = new Promise<void>((resolve, reject) => {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        shutdown(signal).then(resolve, reject);
      });
    }
  });

  lab = await Lab.up({ name: opts.name, nodes: opts.nodes, log: (line) => console.log(line) });
  const configPath = lab.sidecarConfig({ server: { port: opts.port } });
  console.log(`sidecar config: ${configPath}`);
  try {
    sidecar = await lab.startSidecar(configPath);
    console.log(`sidecar log: ${sidecar.logPath}`);
    await waitProtected(sidecar);
    console.log(`API: ${sidecar.url}`);
    console.log(`token: ${sidecar.token}`);
  } catch (error) {
    console.error(`the sidecar did not start: ${(error as Error).message}`);
    console.error("the lab stays up to look around (npm run lab -- status)");
  }
  console.log(`MQTT: ${lab.mqttUrl}`);
  console.log(
    "Pull the active's cable with `npm run lab -- fault cut-link <node>`: the sidecar fails over on its own " +
      "once the trouble has lasted failover.grace (30 s by default), ~40 s after the cut in all.",
  );
  console.log("Ctrl-C stops the sidecar and takes the lab down.");
  await stopped;
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`demo: ${error.message}`);
    process.exit(1);
  },
);
