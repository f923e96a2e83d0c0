/**
 * What the z2m-backup driver does to a dongle by itself, per adapter family: read what it holds,
 * park it, wipe it, and make it carry the network's IEEE. zigbee2mqtt does the restore.
 * - zstack: zigpy-znp's tools (as the zstack-nvram driver);
 * - ember: the sidecar's own EmberZNet host tool (dist/ember-tool.js), run with the node's Node.js.
 */
import { type NetworkIdentity, networkOf, parseNvram } from "../../coordinator/nvram.js";
import { type ClusterContext, nodeOf } from "../context.js";
import { readNvram, withTool } from "../operations/common.js";
import { parkNode } from "./zstack-nvram.js";

export interface DongleInfo {
  /** The IEEE (EUI64) the dongle answers with now, 0x-prefixed. */
  ieee: string;
  /** ember: the one-time custom EUI64 token (null: blank); undefined where there is none. */
  customIeee?: string | null;
  /** The network it holds, if any (undefined: none, or not read). */
  network?: { pan_id: number; extended_pan_id: string; channel: number; frame_counter: number };
  /** Whether `network` was read: reading an EmberZNet dongle's network puts it on the air a moment. */
  networkRead: boolean;
}

export interface AdapterTools {
  readonly adapter: "zstack" | "ember";
  /**
   * Whether `info` can read the network without it going on the air (zigpy-znp reads NV; an
   * EmberZNet NCP must start its network to tell): where it cannot, a target is wiped unread.
   */
  readonly readsNetworkQuietly: boolean;
  /** Whether the node can run the tool (problems, empty when fine). */
  present(cx: ClusterContext, node: string): Promise<string[]>;
  /**
   * What the dongle holds; it is left parked (no network on the air). `network: false`: the
   * identity only, nothing started to read it.
   */
  info(
    cx: ClusterContext,
    node: string,
    signal: AbortSignal,
    notes?: string[],
    options?: { network?: boolean },
  ): Promise<DongleInfo>;
  park(cx: ClusterContext, node: string, signal: AbortSignal, notes?: string[]): Promise<string>;
  /** No network on the dongle afterwards: zigbee2mqtt restores from the backup at its next start. */
  wipe(cx: ClusterContext, node: string, signal: AbortSignal, notes?: string[]): Promise<void>;
  /**
   * Makes a restore onto this dongle come up with `ieee`; throws when it cannot (an EFR32 whose
   * one-time custom EUI64 token holds another value).
   */
  carryIeee(
    cx: ClusterContext,
    node: string,
    ieee: string,
    signal: AbortSignal,
    notes?: string[],
  ): Promise<string>;
}

const hex = (value: unknown) =>
  typeof value === "string" ? value.toLowerCase().replace(/^0x/, "") : undefined;
const prefixed = (value: unknown) => {
  const h = hex(value);
  return h ? `0x${h.padStart(16, "0")}` : undefined;
};

async function toolsProblems(cx: ClusterContext, node: string): Promise<string[]> {
  try {
    const tools = await nodeOf(cx, node).toolsPresent();
    return tools.ok ? [] : [`${tools.what}: ${tools.detail}`];
  } catch (error) {
    return [`coordinator tools not checked: ${(error as Error).message}`];
  }
}

const zstackTools: AdapterTools = {
  adapter: "zstack",
  readsNetworkQuietly: true,
  present: toolsProblems,
  async info(cx, node, signal, notes) {
    const dump = parseNvram(await readNvram(cx, node, signal, notes));
    const ieee = `0x${(dump.LEGACY?.EXTADDR ?? "").match(/../g)?.reverse().join("") ?? ""}`;
    let network: NetworkIdentity | undefined;
    try {
      network = networkOf(dump);
    } catch {
      // No NIB: a blank dongle.
      return { ieee, networkRead: true };
    }
    const formed = network.configured && !/^0x(f{16}|0{16})$/.test(network.extended_pan_id);
    return {
      ieee,
      networkRead: true,
      ...(formed
        ? {
            network: {
              pan_id: network.pan_id,
              extended_pan_id: network.extended_pan_id,
              channel: network.channel,
              frame_counter: network.frame_counter,
            },
          }
        : {}),
    };
  },
  park: (cx, node, signal, notes) => parkNode(cx, node, signal, notes),
  async wipe(cx, node, signal, notes) {
    await withTool(cx, node, "nvram_reset", signal, (n, s) => n.nvramReset(s), notes);
  },
  async carryIeee() {
    return "zigbee2mqtt's Z-Stack restore writes the network's IEEE onto the dongle";
  },
};

const emberTools: AdapterTools = {
  adapter: "ember",
  readsNetworkQuietly: false,
  present: toolsProblems,
  async info(cx, node, signal, notes, options) {
    const quiet = options?.network === false;
    const answer = await withTool(
      cx,
      node,
      "coordinator info",
      signal,
      (n, s) => n.emberTool("info", quiet ? ["--no-network"] : [], s),
      notes,
    );
    const network = answer.network as Record<string, unknown> | null | undefined;
    const custom = answer.custom_eui64;
    return {
      ieee: prefixed(answer.eui64) ?? "0x0000000000000000",
      customIeee: typeof custom === "string" ? (prefixed(custom) ?? null) : null,
      networkRead: !quiet,
      ...(network
        ? {
            network: {
              pan_id: Number(network.pan_id),
              extended_pan_id: prefixed(network.extended_pan_id) ?? "",
              channel: Number(network.channel),
              frame_counter: Number(network.nwk_frame_counter),
            },
          }
        : {}),
    };
  },
  async park(cx, node, signal, notes) {
    await withTool(cx, node, "park the coordinator", signal, (n, s) => n.emberTool("park", [], s), notes);
    return "ASH reset: the NCP keeps its tokens and runs no network until zigbee2mqtt starts it";
  },
  async wipe(cx, node, signal, notes) {
    await withTool(cx, node, "wipe the coordinator", signal, (n, s) => n.emberTool("wipe", [], s), notes);
  },
  async carryIeee(cx, node, ieee, signal, notes) {
    const answer = await withTool(
      cx,
      node,
      "set the custom EUI64",
      signal,
      (n, s) => n.emberTool("set-eui64", ["--eui64", hex(ieee) ?? ""], s),
      notes,
    );
    return answer.written
      ? `custom EUI64 token written with ${ieee} (once: it cannot be changed again)`
      : `custom EUI64 token already holds ${ieee}`;
  },
};

export function adapterToolsOf(cx: ClusterContext, node: string): AdapterTools {
  return nodeOf(cx, node).config.coordinator.adapter === "ember" ? emberTools : zstackTools;
}
