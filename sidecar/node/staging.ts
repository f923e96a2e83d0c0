import { createHash } from "node:crypto";
import { posix } from "node:path";
import { z } from "zod";
import { assertSafeRelative } from "../z2m/manifest.js";
import { hashRemote, listTree } from "./data-files.js";
import { isNotFound, type SshTransport } from "./ssh.js";
import { NodeCommandError } from "./zigbee-node.js";

export const STAGED_MANIFEST = ".z2mha-manifest.json";
/** In the live data dir: which files the last install wrote, the only ones a later install may delete. */
export const INSTALLED_MANIFEST = ".z2mha-installed.json";

export interface StagedFile {
  path: string;
  sha256: string;
  size: number;
  mode: number;
}

/** What a staging dir holds: which snapshot, prepared for which node, and every file's hash. */
export interface StagedManifest {
  snapshot_id: string;
  source_node: string;
  target_node: string;
  staged_at: string;
  files: StagedFile[];
}

export interface StageResult {
  bytes_moved: number;
  files_uploaded: number;
  files_linked: number;
  unchanged: boolean;
}

const relativePath = z
  .string()
  .min(1)
  .refine((p) => {
    try {
      assertSafeRelative(p);
      return !p.includes("\n");
    } catch {
      return false;
    }
  }, "not a safe relative path");

/** The manifest a staging dir holds, as read back from the node: validated, never trusted. */
const stagedManifestSchema = z.object({
  snapshot_id: z.string().min(1),
  source_node: z.string().min(1),
  target_node: z.string().min(1),
  staged_at: z.string().min(1),
  files: z.array(
    z.object({
      path: relativePath,
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      size: z.number().int().min(0),
      mode: z.number().int().min(0),
    }),
  ),
});

const installedSchema = z.object({ snapshot_id: z.string(), files: z.array(relativePath) });

/**
 * The directory part of "$f" without running dirname: a name such as "--help" would be read as
 * an option (BusyBox's dirname takes no "--"). Every path here is relative and safe (checked).
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
const DIR_OF = "case $f in */*) d=${f%/*} ;; *) d=. ;; esac";

/** Links (or, across file systems, copies) files node-locally; a fixed script, paths as arguments. */
const LINK_SCRIPT = `set -e
src=$1; dst=$2; shift 2
for f do
  ${DIR_OF}
  mkdir -p -- "$dst/$d"
  ln -- "$src/$f" "$dst/$f" 2>/dev/null || cp -p -- "$src/$f" "$dst/$f"
done`;

/** Copies staged files into the live data dir, each through a temp name and a rename. */
const INSTALL_SCRIPT = `set -e
src=$1; dst=$2; shift 2
for f do
  ${DIR_OF}
  mkdir -p -- "$dst/$d"
  cp -p -- "$src/$f" "$dst/$f.z2mha-tmp"
  mv -f -- "$dst/$f.z2mha-tmp" "$dst/$f"
done`;

/** What marks a zigbee2mqtt install dir; never found in its data dir. */
const INSTALL_DIR_MARKS = ["package.json", "index.js", "node_modules"];

/**
 * A standby's staging dir: `current/` is a complete, verified copy of the active's data dir with
 * this node's overrides, ready to become the live data dir. A new copy is built in `.next/`
 * (unchanged files hard-linked from `current/`, only changed ones uploaded), verified, then swapped
 * in with two renames; a failure at any point removes `.next/` and leaves `current/` as it was.
 * A crash between the two renames leaves `.prev/` alone, which `recover()` puts back.
 */
export class Staging {
  readonly current: string;
  readonly next: string;
  readonly prev: string;

  constructor(
    private readonly ssh: SshTransport,
    readonly dir: string,
    private readonly nodeId: string,
  ) {
    this.current = posix.join(dir, "current");
    this.next = posix.join(dir, ".next");
    this.prev = posix.join(dir, ".prev");
  }

  async recover(): Promise<string | undefined> {
    const [hasCurrent, hasPrev] = await Promise.all([
      this.ssh.exists(this.current),
      this.ssh.exists(this.prev),
    ]);
    if (!hasCurrent && hasPrev) {
      await this.ssh.rename(this.prev, this.current);
      return "restored current/ from .prev/ after an interrupted swap";
    }
    if (hasCurrent && hasPrev) {
      await this.ssh.rmrf(this.prev);
      return "removed a leftover .prev/";
    }
    return undefined;
  }

  /**
   * The staged copy's manifest, or undefined when nothing is staged. A manifest that is not valid
   * (edited by hand, torn by a full disk on the node) counts as nothing staged: the next sync
   * stages a complete copy again, uploading every file.
   */
  async read(): Promise<StagedManifest | undefined> {
    await this.recover();
    let text: Buffer;
    try {
      text = await this.ssh.readFile(posix.join(this.current, STAGED_MANIFEST), {
        maxBytes: 4 * 1024 * 1024,
      });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    try {
      const parsed = stagedManifestSchema.safeParse(JSON.parse(text.toString("utf8")));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes `current/` hold exactly `target`. `content(sha256)` supplies the bytes of files the node
   * does not have yet. Returns how many bytes crossed the network.
   */
  async stage(target: StagedManifest, content: (sha256: string) => Buffer): Promise<StageResult> {
    for (const f of target.files) assertSafeRelative(f.path);
    const existing = await this.read();
    if (existing && sameFiles(existing.files, target.files) && existing.snapshot_id === target.snapshot_id) {
      return { bytes_moved: 0, files_uploaded: 0, files_linked: 0, unchanged: true };
    }
    const have = new Map<string, StagedFile>();
    for (const f of existing?.files ?? []) if (!have.has(f.sha256)) have.set(f.sha256, f);

    await this.ssh.rmrf(this.next).catch((error) => {
      if (!isNotFound(error)) throw error;
    });
    let bytes = 0;
    let uploaded = 0;
    try {
      await this.ssh.mkdirp(this.next, { mode: 0o700 });
      const toLink: StagedFile[] = [];
      const linkFrom: [from: string, to: string][] = [];
      for (const file of target.files) {
        const source = have.get(file.sha256);
        if (source && source.mode === file.mode) {
          if (source.path === file.path) toLink.push(file);
          else linkFrom.push([source.path, file.path]);
          continue;
        }
        const data = content(file.sha256);
        await this.ssh.mkdirp(posix.dirname(posix.join(this.next, file.path)));
        await this.ssh.writeFileAtomic(posix.join(this.next, file.path), data, { mode: file.mode });
        bytes += data.length;
        uploaded++;
      }
      if (toLink.length > 0)
        await this.#link(
          this.current,
          this.next,
          toLink.map((f) => f.path),
        );
      for (const [from, to] of linkFrom) {
        await this.ssh.writeFileAtomic(
          posix.join(this.next, to),
          await this.ssh.readFile(posix.join(this.current, from)),
        );
      }
      await this.ssh.writeFileAtomic(
        posix.join(this.next, STAGED_MANIFEST),
        `${JSON.stringify(target, null, 2)}\n`,
        {
          mode: 0o600,
        },
      );
      const bad = await this.verify(this.next, target);
      if (bad.length > 0)
        throw new Error(`staged copy on ${this.nodeId} does not match: ${bad.slice(0, 5).join(", ")}`);
      if (await this.ssh.exists(this.current)) await this.ssh.rename(this.current, this.prev);
      await this.ssh.rename(this.next, this.current);
      await this.ssh.rmrf(this.prev).catch(() => {});
    } catch (error) {
      await this.ssh.rmrf(this.next).catch(() => {});
      await this.recover().catch(() => {});
      throw error;
    }
    return {
      bytes_moved: bytes,
      files_uploaded: uploaded,
      files_linked: target.files.length - uploaded,
      unchanged: false,
    };
  }

  async #link(src: string, dst: string, paths: string[]): Promise<void> {
    for (let i = 0; i < paths.length; i += 200) {
      const batch = paths.slice(i, i + 200);
      const result = await this.ssh.exec(["sh", "-c", LINK_SCRIPT, "z2mha-link", src, dst, ...batch], {
        timeoutMs: 120_000,
      });
      if (result.code !== 0)
        throw new NodeCommandError(this.nodeId, "link unchanged files into the staging dir", result);
    }
  }

  /** Files in `dir` whose content differs from the manifest (or are missing). */
  async verify(dir: string, manifest: StagedManifest): Promise<string[]> {
    const hashes = await hashRemote(
      this.ssh,
      dir,
      manifest.files.map((f) => f.path),
    );
    return manifest.files.filter((f) => hashes.get(f.path) !== f.sha256).map((f) => f.path);
  }

  /**
   * Writes the live data dir from `current/` (switchover/failover only). The directory must be a
   * zigbee2mqtt data dir first: missing or empty, or holding configuration.yaml and none of an
   * install dir's files (a data_dir pointed at the install dir once cost a standby its index.js,
   * package.json and node_modules). Every staged file is copied in through a temp name, then
   * files no longer wanted are removed, but only those this product put there (listed by the last
   * install) or that the controller saw in this node's own data dir while it was active (`known`);
   * anything else is left alone. The result is verified by hash.
   */
  async installInto(
    dataDir: string,
    exclude: (relativePath: string) => boolean,
    known: Iterable<string> = [],
  ): Promise<StagedManifest> {
    const manifest = await this.read();
    if (!manifest) throw new Error(`${this.nodeId} has no staged copy in ${this.current}`);
    const badStaged = await this.verify(this.current, manifest);
    if (badStaged.length > 0) {
      throw new Error(
        `the staged copy on ${this.nodeId} was changed after staging: ${badStaged.slice(0, 5).join(", ")}`,
      );
    }
    const previous = await this.#checkDataDir(dataDir);
    const paths = manifest.files.map((f) => f.path);
    for (let i = 0; i < paths.length; i += 200) {
      const result = await this.ssh.exec(
        ["sh", "-c", INSTALL_SCRIPT, "z2mha-install", this.current, dataDir, ...paths.slice(i, i + 200)],
        { timeoutMs: 300_000 },
      );
      if (result.code !== 0)
        throw new NodeCommandError(this.nodeId, "write the data dir from the staged copy", result);
    }
    const keep = new Set(paths);
    const ours = new Set([...previous, ...known]);
    const extras = (await listTree(this.ssh, dataDir, exclude))
      .map((f) => f.path)
      .filter((p) => !keep.has(p) && ours.has(p));
    if (extras.length > 0) {
      const result = await this.ssh.exec(["rm", "-f", "--", ...extras.map((p) => posix.join(dataDir, p))]);
      if (result.code !== 0)
        throw new NodeCommandError(this.nodeId, "remove files the active node did not have", result);
    }
    const bad = await this.verify(dataDir, manifest);
    if (bad.length > 0)
      throw new Error(`data dir on ${this.nodeId} does not match the staged copy: ${bad.join(", ")}`);
    await this.ssh.writeFileAtomic(
      posix.join(dataDir, INSTALLED_MANIFEST),
      `${JSON.stringify({ snapshot_id: manifest.snapshot_id, files: paths })}\n`,
      { mode: 0o600 },
    );
    return manifest;
  }

  /**
   * Refuses a data dir that is not one (see installInto) and returns the files the last install
   * wrote there. A missing directory is created.
   */
  async #checkDataDir(dataDir: string): Promise<string[]> {
    let names: string[];
    try {
      names = (await this.ssh.readdir(dataDir)).map((e) => e.name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.ssh.mkdirp(dataDir);
      return [];
    }
    const marks = names.filter((n) => INSTALL_DIR_MARKS.includes(n));
    if (marks.length > 0)
      throw new Error(
        `${dataDir} on ${this.nodeId} holds ${marks.join(", ")}: it looks like the zigbee2mqtt install dir, not its data dir; refusing to install into it (check data_dir)`,
      );
    const content = names.filter((n) => !n.startsWith(".z2mha-"));
    if (content.length > 0 && !content.includes("configuration.yaml"))
      throw new Error(
        `${dataDir} on ${this.nodeId} is not empty and has no configuration.yaml: it does not look like a zigbee2mqtt data dir; refusing to install into it (check data_dir)`,
      );
    if (!names.includes(INSTALLED_MANIFEST)) return [];
    try {
      const text = await this.ssh.readFile(posix.join(dataDir, INSTALLED_MANIFEST), {
        maxBytes: 4 * 1024 * 1024,
      });
      const parsed = installedSchema.safeParse(JSON.parse(text.toString("utf8")));
      return parsed.success ? parsed.data.files : [];
    } catch {
      return [];
    }
  }
}

function sameFiles(a: StagedFile[], b: StagedFile[]): boolean {
  const key = (files: StagedFile[]) =>
    createHash("sha256")
      .update(
        [...files]
          .sort((x, y) => (x.path < y.path ? -1 : 1))
          .map((f) => `${f.path}\0${f.sha256}\0${f.mode}`)
          .join("\n"),
      )
      .digest("hex");
  return key(a) === key(b);
}
