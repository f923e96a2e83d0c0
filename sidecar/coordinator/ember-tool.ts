/**
 * Entry point of dist/ember-tool.js, the self-contained EmberZNet NCP tool the controller copies to
 * a zigbee2mqtt node and runs there with the node's own `node` (docs/ember-tool.md). It imports
 * nothing but Node's standard library and ./ember/, so tsup bundles it into one file.
 */
import { runTool } from "./ember/tool.js";

const write = (stream: NodeJS.WriteStream, line: string) =>
  new Promise<void>((resolve) => stream.write(`${line}\n`, () => resolve()));

const pending: Promise<void>[] = [];
const code = await runTool(process.argv.slice(2), {
  stdout: (line) => pending.push(write(process.stdout, line)),
  stderr: (line) => pending.push(write(process.stderr, line)),
  handleSignals: true,
});
await Promise.all(pending);
// Exit explicitly: a serial port's read stays blocked in a worker thread until the next byte.
process.exit(code);
