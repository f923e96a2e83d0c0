/**
 * Start an ember simulator as its own process (as the lab and the integration tests run it) and
 * wait until it is ready, with the Z-Stack simulator's launcher.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type LaunchOptions,
  launchSimulator,
  type SimulatorKind,
  SimulatorProcessBase,
} from "../simulator/process.js";
import { EmberSimulatorClient, type EmberStatus } from "./client.js";

export interface EmberSimulatorProcessOptions extends LaunchOptions {
  /** Factory EUI64 of a new dongle, MSB first. */
  eui64?: string;
  /** New dongle only: MFG_CUSTOM_EUI_64 already programmed. */
  customEui64?: string;
  ezspVersion?: number;
  resetDelayMs?: number;
}

const EMBER: SimulatorKind = {
  main: join(dirname(fileURLToPath(import.meta.url)), "main.ts"),
  defaultName: "ember",
  what: "ember simulator",
};

/**
 * Unlike the Z-Stack chip, an EmberZNet NCP keeps its network (and its frame counter) running after
 * its host left: after waitForNoHost, read `network_up` too.
 */
export class EmberSimulatorProcess extends SimulatorProcessBase<EmberStatus, EmberSimulatorClient> {
  static async start(options: EmberSimulatorProcessOptions): Promise<EmberSimulatorProcess> {
    const args: string[] = [];
    if (options.eui64) args.push("--eui64", options.eui64);
    if (options.customEui64) args.push("--custom-eui64", options.customEui64);
    if (options.ezspVersion !== undefined) args.push("--ezsp-version", String(options.ezspVersion));
    if (options.resetDelayMs !== undefined) args.push("--reset-delay-ms", String(options.resetDelayMs));
    const launched = await launchSimulator<EmberStatus>(EMBER, options, args);
    return new EmberSimulatorProcess(launched, new EmberSimulatorClient(launched.controlPath));
  }
}
