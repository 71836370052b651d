import { spawn } from "node:child_process";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, mkdtemp, open, rm, symlink, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createInflateRaw } from "node:zlib";
import type { ArtifactRule } from "../config/repo-config.js";
import {
  type ArtifactInfo,
  fetchRunArtifacts,
  fetchSuccessfulRunsAt,
  type LogsAccess,
  openArtifactZip,
} from "../logs/github.js";
import type { RepoRef } from "../logs/url.js";
import { prepareWorkspaceOwnership } from "../sandbox/common.js";

/**
 * Build artifacts first: a CI run's uploaded build (tt-metal's `ttm_any.tar.zst` inside the
 * Actions zip) unpacked into the workspace instead of building. The archive is the CI's, which
 * a pull request could have shaped: every entry is checked before a byte is written. Refused:
 * absolute paths and `..`, writing through any symbolic link (one in the archive or one the
 * repository committed), links whose target leaves the destination, hard links, devices and
 * FIFOs, and more bytes or entries than the cap. setuid/setgid bits are dropped. What a refused
 * archive wrote is removed again.
 */

export class ArtifactError extends Error {
  override name = "ArtifactError";
}

export interface UnpackOptions {
  /** Most bytes written in all (size bombs); default 40 GiB. */
  maxBytes?: number;
  /** Most entries (inode bombs); default 2,000,000. */
  maxEntries?: number;
  /** Folder inside the workspace to unpack into (relative); default the workspace itself. */
  destination?: string;
  /** For a zip: only inner files matching one of these `*` patterns (default all). */
  archives?: readonly string[];
  /** The zstd binary (default `zstd` on PATH). */
  zstd?: string;
}

export interface UnpackResult {
  files: number;
  bytes: number;
  /** The archives unpacked (for a zip: its inner archives and files). */
  unpacked: string[];
}

const DEFAULT_MAX = 40 * 1024 ** 3;

/** `*` glob into a RegExp, everything else literal. Pure. */
export function globRegExp(pattern: string, sha?: string): RegExp {
  const withSha = sha ? pattern.split("{sha}").join(sha) : pattern;
  const body = withSha
    .split("*")
    .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`);
}

/** A relative entry name, normalised; null when it is absolute or climbs out. Pure. */
export function safeEntryName(name: string): string | null {
  if (!name || name.includes("\0") || name.startsWith("/") || /^[A-Za-z]:/.test(name) || name.includes("\\"))
    return null;
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) return null;
  return parts.join("/");
}

class Budget {
  bytes = 0;
  entries = 0;
  constructor(
    readonly maxBytes: number,
    readonly maxEntries: number,
  ) {}
  add(n: number) {
    this.bytes += n;
    if (this.bytes > this.maxBytes)
      throw new ArtifactError(
        `the artifact unpacks to more than ${formatBytes(this.maxBytes)} (the cap): refused`,
      );
  }
  entry() {
    if (++this.entries > this.maxEntries)
      throw new ArtifactError(`the artifact holds more than ${this.maxEntries} entries: refused`);
  }
}

/** Where an entry goes: below root, with no symbolic link on the way (created folders included). */
async function prepareParent(root: string, rel: string, created: string[]): Promise<string> {
  const parts = rel.split("/");
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = path.join(cur, p);
    const st = await lstat(cur).catch(() => null);
    if (!st) {
      await mkdir(cur, { mode: 0o755 });
      created.push(cur);
    } else if (st.isSymbolicLink())
      throw new ArtifactError(`${rel}: its folder ${path.relative(root, cur)} is a symbolic link: refused`);
    else if (!st.isDirectory())
      throw new ArtifactError(`${rel}: ${path.relative(root, cur)} is not a folder`);
  }
  return path.join(root, rel);
}

/** Replace whatever is at `target` by a new regular file (never following a link there). */
async function writeEntry(
  target: string,
  mode: number,
  source: AsyncIterable<Uint8Array> | Readable,
  budget: Budget,
  created: string[],
): Promise<void> {
  const st = await lstat(target).catch(() => null);
  if (st?.isDirectory()) throw new ArtifactError(`${target} is a folder; the archive has a file there`);
  if (st) await unlink(target);
  const fh = await open(
    target,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    (mode & 0o777 & ~0o022) | 0o600,
  );
  created.push(target);
  const out = fh.createWriteStream();
  await pipeline(
    Readable.from(source as AsyncIterable<Uint8Array>),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const c of chunks) {
        budget.add(c.length);
        yield c;
      }
    },
    out,
  );
}

/** A reader of exact byte counts over a stream. */
class ByteReader {
  private buf = Buffer.alloc(0);
  private done = false;
  private it: AsyncIterator<Buffer>;
  constructor(src: AsyncIterable<Uint8Array>) {
    this.it = (async function* () {
      for await (const c of src) yield Buffer.from(c);
    })();
  }
  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = Buffer.concat([this.buf, r.value]);
    }
    return this.buf.length >= n;
  }
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  /** Exactly n bytes as chunks. */
  async *chunks(n: number): AsyncIterable<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill(1)))
        throw new ArtifactError("the archive ends in the middle of a file");
      const take = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(take.length);
      left -= take.length;
      yield take;
    }
  }
  /** End the source (a zstd process, a file stream) even when the archive was refused half-way. */
  async close() {
    await this.it.return?.(undefined).catch(() => {});
  }
  async skip(n: number) {
    for await (const _ of this.chunks(n)) {
      /* discard */
    }
  }
}

const cstr = (b: Buffer) => {
  const i = b.indexOf(0);
  return (i < 0 ? b : b.subarray(0, i)).toString("utf8");
};
const octal = (b: Buffer) => {
  // GNU base-256 for sizes above 8 GB.
  if (b[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = cstr(b).trim();
  return s ? Number.parseInt(s, 8) : 0;
};

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const sp = rest.indexOf(" ");
    const len = Number.parseInt(rest.slice(0, sp), 10);
    if (!(len > 0)) break;
    const rec = Buffer.from(rest).subarray(0, len).toString("utf8");
    const kv = rec.slice(sp + 1, -1);
    const eq = kv.indexOf("=");
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    rest = Buffer.from(rest).subarray(len).toString("utf8");
  }
  return out;
}

/** Extract a tar stream below root, checking every entry. */
async function extractTar(src: AsyncIterable<Uint8Array>, root: string, budget: Budget, created: string[]) {
  const r = new ByteReader(src);
  try {
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    let files = 0;
    for (;;) {
      const h = await r.read(512);
      if (!h || h.every((b) => b === 0)) break;
      const type = String.fromCharCode(h[156]!) || "0";
      const size = pax.size ? Number(pax.size) : octal(h.subarray(124, 136));
      const padded = Math.ceil(size / 512) * 512;
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        if (size > 1024 * 1024) throw new ArtifactError("a tar header record is larger than 1 MB: refused");
        const body = await r.read(padded);
        if (!body) throw new ArtifactError("the archive ends in a header");
        const text = body.subarray(0, size).toString("utf8");
        if (type === "x") pax = { ...pax, ...parsePax(text) };
        else if (type === "L") longName = text.replace(/\0.*$/s, "");
        else if (type === "K") longLink = text.replace(/\0.*$/s, "");
        continue;
      }
      const prefix = cstr(h.subarray(345, 500));
      const rawName =
        pax.path ?? longName ?? (prefix ? `${prefix}/${cstr(h.subarray(0, 100))}` : cstr(h.subarray(0, 100)));
      const linkName = pax.linkpath ?? longLink ?? cstr(h.subarray(157, 257));
      pax = {};
      longName = undefined;
      longLink = undefined;
      budget.entry();
      const name = safeEntryName(rawName);
      if (name === null)
        throw new ArtifactError(`the archive entry "${rawName}" leaves the destination: refused`);
      const mode = octal(h.subarray(100, 108));
      if (name === "") {
        await r.skip(padded);
        continue;
      }
      if (type === "5") {
        const target = await prepareParent(root, `${name}/x`, created);
        void target;
        await r.skip(padded);
        continue;
      }
      if (type === "2") {
        if (linkName.startsWith("/"))
          throw new ArtifactError(`the link ${name} -> ${linkName} is absolute: refused`);
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), linkName));
        if (resolved === ".." || resolved.startsWith("../"))
          throw new ArtifactError(`the link ${name} -> ${linkName} leaves the destination: refused`);
        const target = await prepareParent(root, name, created);
        const st = await lstat(target).catch(() => null);
        if (st?.isDirectory()) throw new ArtifactError(`${name} is a folder; the archive has a link there`);
        if (st) await unlink(target);
        await symlink(linkName, target);
        created.push(target);
        await r.skip(padded);
        continue;
      }
      if (type === "1") throw new ArtifactError(`the hard link ${name} -> ${linkName} is refused`);
      if (type !== "0" && type !== "\0" && type !== "7")
        throw new ArtifactError(
          `the archive entry ${name} is a special file (type ${JSON.stringify(type)}): refused`,
        );
      const target = await prepareParent(root, name, created);
      await writeEntry(target, mode, Readable.from(r.chunks(size)), budget, created);
      await r.skip(padded - size);
      files++;
    }
    return files;
  } finally {
    await r.close();
  }
}

/** zstd -dc as a stream. */
function zstdDecode(src: AsyncIterable<Uint8Array>, binary = "zstd"): AsyncIterable<Uint8Array> {
  const child = spawn(binary, ["-dc", "--no-progress"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const exited = new Promise<number | null>((res, rej) => {
    child.on("error", (e) => rej(new ArtifactError(`zstd could not run: ${e.message}`)));
    child.on("close", (code) => res(code));
  });
  exited.catch(() => {});
  pipeline(Readable.from(src), child.stdin).catch(() => child.kill("SIGKILL"));
  return (async function* () {
    try {
      for await (const c of child.stdout) yield c as Buffer;
      const code = await exited;
      if (code !== 0) throw new ArtifactError(`zstd failed: ${stderr.trim() || `exit ${code}`}`);
    } finally {
      child.kill("SIGKILL");
    }
  })();
}

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  isDir: boolean;
  isLink: boolean;
}

/** The central directory of a zip (no zip64: refused with a message). */
async function readZipDirectory(file: string): Promise<ZipEntry[]> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    const tailLen = Math.min(size, 65_557);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    if (eocd < 0) throw new ArtifactError("not a zip file (no end of central directory)");
    const count = tail.readUInt16LE(eocd + 10);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff || count === 0xffff)
      throw new ArtifactError("zip64 archives are not supported");
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    const out: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new ArtifactError("a broken zip central directory");
      const method = cd.readUInt16LE(p + 10);
      const compressedSize = cd.readUInt32LE(p + 20);
      const sz = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const external = cd.readUInt32LE(p + 38);
      const localOffset = cd.readUInt32LE(p + 42);
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString("utf8");
      const unixMode = external >>> 16;
      out.push({
        name,
        method,
        compressedSize,
        size: sz,
        localOffset,
        isDir: name.endsWith("/"),
        isLink: (unixMode & 0o170000) === 0o120000,
      });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function zipEntryStream(file: string, e: ZipEntry): Promise<AsyncIterable<Uint8Array>> {
  const fh = await open(file, "r");
  const h = Buffer.alloc(30);
  try {
    await fh.read(h, 0, 30, e.localOffset);
  } finally {
    await fh.close();
  }
  if (h.readUInt32LE(0) !== 0x04034b50) throw new ArtifactError(`a broken zip entry ${e.name}`);
  const start = e.localOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  if (e.compressedSize === 0) return Readable.from([]);
  const raw = createReadStream(file, { start, end: start + e.compressedSize - 1 });
  if (e.method === 0) return raw;
  if (e.method === 8) return raw.pipe(createInflateRaw());
  throw new ArtifactError(`zip entry ${e.name} uses compression method ${e.method}, which is not supported`);
}

async function kindOf(file: string): Promise<"zip" | "zstd" | "tar"> {
  const fh = await open(file, "r");
  const b = Buffer.alloc(512);
  try {
    await fh.read(b, 0, 512, 0);
  } finally {
    await fh.close();
  }
  if (b.readUInt32LE(0) === 0x04034b50 || b.readUInt32LE(0) === 0x06054b50) return "zip";
  if (b.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  if (b.subarray(257, 262).toString() === "ustar" || /\.tar$/.test(file)) return "tar";
  throw new ArtifactError(`${path.basename(file)} is not a .zip, .tar or .tar.zst archive`);
}

/**
 * Unpack `archive` (`.zip`, `.tar`, `.tar.zst`; a zip's inner `.tar`/`.tar.zst` files are
 * unpacked in turn, its other files written as they are) into `workspaceDir`/destination.
 * Throws ArtifactError on anything unsafe, after removing what it wrote.
 */
export async function unpackArtifact(
  archive: string,
  workspaceDir: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  const dest = safeEntryName(opts.destination ?? ".");
  if (dest === null) throw new ArtifactError(`destination ${opts.destination} is outside the workspace`);
  const budget = new Budget(opts.maxBytes ?? DEFAULT_MAX, opts.maxEntries ?? 2_000_000);
  const created: string[] = [];
  const rootBase = path.resolve(workspaceDir);
  try {
    const root =
      dest === "" ? rootBase : await prepareParent(rootBase, `${dest}/x`, created).then(path.dirname);
    if (dest !== "") {
      const st = await lstat(root).catch(() => null);
      if (!st) {
        await mkdir(root);
        created.push(root);
      } else if (!st.isDirectory()) throw new ArtifactError(`destination ${dest} is not a folder (a link?)`);
    }
    const unpacked: string[] = [];
    let files = 0;
    const kind = await kindOf(archive);
    if (kind === "zip") {
      const patterns = (opts.archives ?? []).map((p) => globRegExp(p));
      for (const e of await readZipDirectory(archive)) {
        if (e.isDir) continue;
        const name = safeEntryName(e.name);
        if (name === null)
          throw new ArtifactError(`the zip entry "${e.name}" leaves the destination: refused`);
        if (e.isLink) throw new ArtifactError(`the zip entry ${e.name} is a symbolic link: refused`);
        if (patterns.length && !patterns.some((p) => p.test(name) || p.test(path.posix.basename(name))))
          continue;
        const stream = await zipEntryStream(archive, e);
        if (/\.(tar\.zst|tzst)$/.test(name))
          files += await extractTar(zstdDecode(stream, opts.zstd), root, budget, created);
        else if (/\.tar$/.test(name)) files += await extractTar(stream, root, budget, created);
        else {
          budget.entry();
          await writeEntry(await prepareParent(root, name, created), 0o644, stream, budget, created);
          files++;
        }
        unpacked.push(name);
      }
    } else {
      const src = createReadStream(archive);
      files += await extractTar(kind === "zstd" ? zstdDecode(src, opts.zstd) : src, root, budget, created);
      unpacked.push(path.basename(archive));
    }
    return { files, bytes: budget.bytes, unpacked };
  } catch (err) {
    for (const p of created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => {});
    throw err instanceof ArtifactError
      ? err
      : new ArtifactError(`could not unpack the artifact: ${(err as Error).message}`);
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}

export interface ArtifactFound {
  artifact: ArtifactInfo;
  rule: ArtifactRule;
}

/**
 * The first configured artifact at the job's commit: uploaded by the failing run, else (when
 * allowed) by a successful run of the same commit. Expired ones do not count.
 */
export async function findBuildArtifact(
  ref: RepoRef,
  o: { runId?: number; sha: string; rules: readonly ArtifactRule[]; fromSuccessfulRuns: boolean },
  access: LogsAccess,
): Promise<ArtifactFound | null> {
  if (o.rules.length === 0) return null;
  const pick = (list: ArtifactInfo[]) => {
    for (const rule of o.rules) {
      const re = globRegExp(rule.name, o.sha);
      const a = list.find((x) => !x.expired && re.test(x.name) && (!x.headSha || x.headSha === o.sha));
      if (a) return { artifact: a, rule };
    }
    return null;
  };
  if (o.runId) {
    const found = pick(await fetchRunArtifacts(ref, o.runId, access));
    if (found) return found;
  }
  if (!o.fromSuccessfulRuns) return null;
  for (const runId of (await fetchSuccessfulRunsAt(ref, o.sha, access)).slice(0, 10)) {
    if (runId === o.runId) continue;
    const found = pick(await fetchRunArtifacts(ref, runId, access));
    if (found) return found;
  }
  return null;
}

/**
 * Download the artifact to a temporary file, unpack it into the workspace, and say so:
 * `build: artifact <name> from run N (unpacked 1.2 GB)`.
 */
export async function downloadAndUnpack(
  ref: RepoRef,
  found: ArtifactFound,
  workspaceDir: string,
  access: LogsAccess,
  opts: Omit<UnpackOptions, "destination" | "archives"> = {},
): Promise<UnpackResult & { status: string }> {
  const max = opts.maxBytes ?? DEFAULT_MAX;
  if (found.artifact.sizeInBytes > max)
    throw new ArtifactError(
      `artifact ${found.artifact.name} is ${formatBytes(found.artifact.sizeInBytes)}, above the cap`,
    );
  const dir = await mkdtemp(path.join(tmpdir(), "autofix-artifact-"));
  try {
    const zip = path.join(dir, "artifact.zip");
    let downloaded = 0;
    await pipeline(
      Readable.from(await openArtifactZip(ref, found.artifact.id, access)),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          downloaded += c.length;
          if (downloaded > max)
            throw new ArtifactError(`the artifact download is larger than the cap (${formatBytes(max)})`);
          yield c;
        }
      },
      createWriteStream(zip, { mode: 0o600 }),
    );
    const r = await unpackArtifact(zip, workspaceDir, {
      ...opts,
      destination: found.rule.destination,
      archives: found.rule.archives,
    });
    return {
      ...r,
      status: `build: artifact ${found.artifact.name} from run ${found.artifact.runId} (unpacked ${formatBytes(r.bytes)})`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Before the build: the job's configured CI artifact unpacked into its workspace (the build
 * that follows is then incremental). Never throws: no artifact, or one that cannot be used,
 * means the usual build, and the returned line says why.
 */
export async function unpackJobArtifact(o: {
  job: {
    repository: { owner: string; name: string };
    target: { headSha: string };
    ci?: { runId: number } | undefined;
  };
  config: { artifacts: { build: readonly ArtifactRule[]; from_successful_runs: boolean } } | null;
  workspace: string;
  apiBase: string;
  /** Asked for only when the repository configures artifacts. */
  token: () => Promise<string>;
  maxBytes?: number;
  signal?: AbortSignal;
  fetch?: LogsAccess["fetch"];
  /** Give what was unpacked to the sandbox's uid and gid (a root service with a sandbox). */
  owner?: { uid: number; gid: number };
}): Promise<{ status: string; unpacked: boolean } | null> {
  const rules = o.config?.artifacts.build ?? [];
  if (rules.length === 0) return null;
  const ref = {
    host: new URL(o.apiBase).host,
    apiBase: o.apiBase,
    owner: o.job.repository.owner,
    repo: o.job.repository.name,
  };
  try {
    const access: LogsAccess = {
      token: await o.token(),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.fetch ? { fetch: o.fetch } : {}),
    };
    const found = await findBuildArtifact(
      ref,
      {
        ...(o.job.ci ? { runId: o.job.ci.runId } : {}),
        sha: o.job.target.headSha,
        rules,
        fromSuccessfulRuns: o.config?.artifacts.from_successful_runs ?? true,
      },
      access,
    );
    if (!found)
      return {
        status: `build: no artifact at ${o.job.target.headSha.slice(0, 12)} matches; building`,
        unpacked: false,
      };
    const r = await downloadAndUnpack(ref, found, o.workspace, access, {
      ...(o.maxBytes ? { maxBytes: o.maxBytes } : {}),
    });
    if (o.owner) await prepareWorkspaceOwnership(o.workspace, o.owner.uid, o.owner.gid);
    return { status: r.status, unpacked: true };
  } catch (err) {
    return {
      status: `build: the artifact was not used (${(err as Error).message.slice(0, 300)}); building`,
      unpacked: false,
    };
  }
}
