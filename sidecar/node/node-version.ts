/**
 * The Node.js a node needs to run the sidecar's ember tool (docs/ember-tool.md): the tool is
 * bundled for Node.js 18 and newer, the oldest zigbee2mqtt 2.x runs on.
 */
export const OLDEST_NODE_FOR_EMBER_TOOL = 18;

/** Why the `node --version` output cannot run the ember tool, or undefined when it can. */
export function nodeVersionProblem(versionOutput: string): string | undefined {
  const version = versionOutput.trim();
  const major = /^v(\d+)\./.exec(version)?.[1];
  if (major === undefined) return `${JSON.stringify(version.slice(0, 80))} is not a Node.js version`;
  if (Number(major) < OLDEST_NODE_FOR_EMBER_TOOL)
    return `${version} is older than Node.js ${OLDEST_NODE_FOR_EMBER_TOOL}`;
  return undefined;
}
