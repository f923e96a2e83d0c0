/**
 * Node set-up steps taken from docs/nodes.md itself: a block introduced by `<!-- lab: NAME -->`
 * is run verbatim, as root, on every node at `up`. What the docs tell users to paste is therefore
 * exactly what the lab's nodes run with (the sudo rule above all), and a doc change that breaks
 * it breaks the lab.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { HostExec } from "./hosts.js";
import { REPO } from "./install.js";
import type { HostId } from "./naming.js";

export const NODES_DOC = join(REPO, "docs", "nodes.md");

/** The blocks the lab runs on each node, in order. */
export const LAB_NODE_BLOCKS = ["sudoers-openrc"] as const;

/** The shell block of docs/nodes.md right after `<!-- lab: name -->`. */
export function docBlock(name: string, doc = readFileSync(NODES_DOC, "utf8")): string {
  const marker = `<!-- lab: ${name} -->`;
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/nodes.md has no block "${marker}"`);
  const match = /^\s*```sh\n([\s\S]*?)\n```/.exec(doc.slice(at + marker.length));
  if (!match?.[1]) throw new Error(`docs/nodes.md: "${marker}" is not followed by a \`\`\`sh block`);
  if (doc.indexOf(marker, at + 1) >= 0) throw new Error(`docs/nodes.md has "${marker}" twice`);
  return `${match[1]}\n`;
}

/** Runs docs/nodes.md's lab blocks on a node, as root, stopping at the first failing command. */
export async function runDocBlocks(exec: HostExec, node: HostId): Promise<void> {
  for (const name of LAB_NODE_BLOCKS) {
    const result = await exec(node, ["/bin/sh", "-eu", "-c", docBlock(name)]);
    if (result.code !== 0) {
      throw new Error(
        `docs/nodes.md block "${name}" failed on ${node} (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`,
      );
    }
  }
}
