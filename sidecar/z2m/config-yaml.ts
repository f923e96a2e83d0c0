import { CST, isMap, isScalar, Parser, parseDocument, parse as parseValue, type Scalar, YAMLMap } from "yaml";

export type OverrideValue = string | number | boolean | null;

export class ConfigYamlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigYamlError";
  }
}

function checkDocument(text: string): void {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigYamlError(
      `configuration.yaml is not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`,
    );
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new ConfigYamlError("configuration.yaml must be a mapping at the top level");
  }
}

type Token = CST.Token;

function keyOf(item: CST.CollectionItem): string | undefined {
  if (!item.key || !CST.isScalar(item.key)) return undefined;
  return String(CST.resolveAsScalar(item.key)?.value ?? "");
}

/** The scalar token at `path` in the document's CST, if the path exists and ends in a scalar. */
function findScalar(doc: CST.Document, path: string[]): { token: Token; inFlow: boolean } | undefined {
  let node: Token | undefined = doc.value;
  let inFlow = false;
  for (const key of path) {
    if (!node) return undefined;
    if (node.type === "flow-collection") {
      if (node.start.source !== "{") return undefined;
      inFlow = true;
    } else if (node.type !== "block-map") {
      return undefined;
    }
    const item: CST.CollectionItem | undefined = node.items.find((i: CST.CollectionItem) => keyOf(i) === key);
    node = item?.value;
  }
  return node && CST.isScalar(node) && node.type !== "block-scalar" ? { token: node, inFlow } : undefined;
}

function representation(value: OverrideValue, previous: Token): { source: string; type?: Scalar.Type } {
  if (typeof value !== "string") return { source: value === null ? "null" : String(value), type: "PLAIN" };
  if (previous.type === "single-quoted-scalar" || previous.type === "double-quoted-scalar") {
    return { source: value };
  }
  let plainOk = false;
  try {
    plainOk = value !== "" && !/[\n#]|^\s|\s$/.test(value) && parseValue(value) === value;
  } catch {
    plainOk = false;
  }
  return { source: value, type: plainOk ? "PLAIN" : "QUOTE_DOUBLE" };
}

/**
 * Sets per-node values (dotted paths such as `frontend.host`, `serial.port`) in zigbee2mqtt's
 * configuration.yaml. Existing values are replaced in place in the concrete syntax tree, so every
 * other byte of the file (comments, spacing, quoting, key order) stays as the user wrote it. Paths
 * that do not exist yet are added through the document model (`frontend: true`, the old boolean
 * form, becomes `{enabled: true, ...}`); that re-serialises the file in the library's style.
 */
export function applyOverrides(text: string, overrides: Record<string, OverrideValue>): string {
  const entries = Object.entries(overrides);
  if (entries.length === 0) return text;
  checkDocument(text);

  const tokens = [...new Parser().parse(text)];
  const docToken = tokens.find((t): t is CST.Document => t.type === "document");
  const missing: [string, OverrideValue][] = [];
  for (const [dotted, value] of entries) {
    const found = docToken ? findScalar(docToken, dotted.split(".")) : undefined;
    if (!found) {
      missing.push([dotted, value]);
      continue;
    }
    const { source, type } = representation(value, found.token);
    CST.setScalarValue(found.token, source, {
      afterKey: true,
      inFlow: found.inFlow,
      ...(type ? { type } : {}),
    });
  }
  const edited = tokens.map((t) => CST.stringify(t)).join("");
  return missing.length === 0 ? edited : addMissing(edited, missing);
}

function addMissing(text: string, entries: [string, OverrideValue][]): string {
  const doc = parseDocument(text);
  if (doc.contents === null) doc.contents = doc.createNode({}) as never;
  for (const [dotted, value] of entries) {
    const path = dotted.split(".");
    let parent = doc.contents as unknown as YAMLMap;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i] as string;
      const child = parent.get(key, true);
      if (child === undefined || child === null || (isScalar(child) && child.value === null)) {
        const map = new YAMLMap();
        parent.set(key, map);
        parent = map;
      } else if (isMap(child)) {
        parent = child as YAMLMap;
      } else if (isScalar(child) && typeof child.value === "boolean") {
        const map = doc.createNode({ enabled: child.value }) as YAMLMap;
        parent.set(key, map);
        parent = map;
      } else {
        throw new ConfigYamlError(`cannot set ${dotted}: ${path.slice(0, i + 1).join(".")} is not a mapping`);
      }
    }
    const leaf = path[path.length - 1] as string;
    const existing = parent.get(leaf, true);
    if (isScalar(existing)) existing.value = value;
    else parent.set(leaf, value);
  }
  return doc.toString();
}

/** Reads a dotted path from configuration.yaml text; undefined when absent. */
export function readSetting(text: string, dotted: string): unknown {
  checkDocument(text);
  return parseDocument(text).getIn(dotted.split("."));
}
