/**
 * Starts the real sidecar (dist/cli.js) for the API fuzzer: nodes nobody listens for, loopback
 * only, printing "URL TOKEN" once it answers; runs until killed.
 */
import { startSidecarProcess, writeTestConfig } from "../helpers/sidecar.js";

const config = await writeTestConfig({ log_level: "warn" });
const sidecar = await startSidecarProcess(config);
process.stdout.write(`${sidecar.url} ${sidecar.token}\n`);
const stop = () => void sidecar.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
