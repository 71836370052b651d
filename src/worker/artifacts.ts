import { spawn } from "node:child_process";
import {
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  lstatSync,
  openSync,
  unlinkSync,
  writev,
  writevSync,
} from "node:fs";
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
    if (!Number.isSafeInteger(n) || n < 0) throw new ArtifactError(`an entry size of ${n} bytes: refused`);
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

/**
 * One unpack's state: what it created (removed again on refusal) and the folders below root it
 * has already checked. A folder once checked (a real folder, not a link) stays one for the rest
 * of the unpack: nothing the unpack writes replaces a folder (a file or a link where a folder is
 * is refused), and nothing else writes into the workspace while the worker unpacks into it.
 */
class Unpacking {
  readonly created: string[] = [];
  readonly folders = new Set<string>();
  private sliceStart = performance.now();
  constructor(readonly budget: Budget) {}
  /**
   * Small files are written with blocking calls (one open, write and close each, no trip to the
   * thread pool, which cost more than the writing); this gives the event loop a turn at least
   * every few milliseconds so that the worker's timers (lock renewals, heartbeats) still run.
   */
  async slice(): Promise<void> {
    if (performance.now() - this.sliceStart < 5) return;
    await new Promise<void>((r) => setImmediate(r));
    this.sliceStart = performance.now();
  }
}

/** Where an entry goes: below root, with no symbolic link on the way (created folders included). */
async function prepareParent(root: string, rel: string, u: Unpacking): Promise<string> {
  const parts = rel.split("/");
  let cur = root;
  for (let i = 0; i < parts.length - 1; i++) {
    cur = path.join(cur, parts[i]!);
    if (u.folders.has(cur)) continue;
    const st = await lstat(cur).catch(() => null);
    if (!st) {
      await mkdir(cur, { mode: 0o755 });
      u.created.push(cur);
    } else if (st.isSymbolicLink())
      throw new ArtifactError(`${rel}: its folder ${path.relative(root, cur)} is a symbolic link: refused`);
    else if (!st.isDirectory())
      throw new ArtifactError(`${rel}: ${path.relative(root, cur)} is not a folder`);
    u.folders.add(cur);
  }
  return path.join(root, rel);
}

const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * A new regular file at `target`, replacing whatever is there except a folder. O_CREAT|O_EXCL
 * never follows a link (not even a dangling one: it fails with EEXIST), so a link or file
 * already there is found by the failed open, looked at without following it, and removed.
 */
function createFile(target: string, mode: number, u: Unpacking): number {
  const perm = (mode & 0o777 & ~0o022) | 0o600;
  let fd: number;
  try {
    fd = openSync(target, EXCLUSIVE, perm);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    if (lstatSync(target).isDirectory())
      throw new ArtifactError(`${target} is a folder; the archive has a file there`);
    unlinkSync(target);
    fd = openSync(target, EXCLUSIVE, perm);
  }
  u.created.push(target);
  return fd;
}

/** What is left of `bufs` once `n` bytes of them were written. Pure. */
function dropWritten(bufs: Buffer[], n: number): Buffer[] {
  let skip = n;
  const rest: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

/** Write the buffers in full at the file's position (a short write is continued). */
async function writeAll(fd: number, bufs: Buffer[]): Promise<void> {
  let list = bufs;
  while (list.length > 0) {
    const n = await new Promise<number>((res, rej) =>
      writev(fd, list, (err, written) => (err ? rej(err) : res(written))),
    );
    list = dropWritten(list, n);
  }
}

function writeAllSync(fd: number, bufs: Buffer[]): void {
  let list = bufs;
  while (list.length > 0) list = dropWritten(list, writevSync(fd, list));
}

/** Writes are gathered up to this many bytes (one writev call per batch, not one per chunk). */
const WRITE_BATCH = 1024 * 1024;
/** A tar entry up to this size is gathered whole and written with blocking calls. */
const SMALL_FILE = 256 * 1024;

/**
 * Replace whatever is at `target` by a new regular file holding the chunks `next` gives until it
 * gives null, each chunk counted against the budget before it is written. `size`: the exact
 * size when known beforehand (a tar entry; a zip's is not trusted).
 */
async function writeEntry(
  target: string,
  mode: number,
  next: () => Promise<Buffer | null>,
  u: Unpacking,
  size?: number,
): Promise<void> {
  if (size !== undefined && size <= SMALL_FILE) {
    const chunks: Buffer[] = [];
    for (let c = await next(); c !== null; c = await next()) {
      u.budget.add(c.length);
      chunks.push(c);
    }
    await u.slice();
    const fd = createFile(target, mode, u);
    try {
      writeAllSync(fd, chunks);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const fd = createFile(target, mode, u);
  try {
    let batch: Buffer[] = [];
    let batched = 0;
    for (let c = await next(); c !== null; c = await next()) {
      u.budget.add(c.length);
      batch.push(c);
      batched += c.length;
      if (batched >= WRITE_BATCH) {
        await writeAll(fd, batch);
        batch = [];
        batched = 0;
      }
    }
    if (batched > 0) await writeAll(fd, batch);
  } finally {
    closeSync(fd);
  }
}

/** The chunks of a stream (a zip entry), one at a time, for writeEntry; close ends the stream. */
function chunksOf(src: AsyncIterable<Uint8Array>) {
  const it = src[Symbol.asyncIterator]();
  return {
    next: async (): Promise<Buffer | null> => {
      for (;;) {
        const r = await it.next();
        if (r.done) return null;
        if (r.value.length > 0) return asBuffer(r.value);
      }
    },
    close: async () => {
      await it.return?.(undefined).catch(() => {});
    },
  };
}

const asBuffer = (c: Uint8Array): Buffer =>
  Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);

/**
 * A reader of exact byte counts over a stream. It keeps the chunks it was given and hands out
 * views of them (no copy, except a header that straddles two chunks).
 */
class ByteReader {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  private avail = 0;
  private done = false;
  private it: AsyncIterator<Uint8Array>;
  constructor(src: AsyncIterable<Uint8Array>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<boolean> {
    while (this.avail < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(asBuffer(r.value));
        this.avail += r.value.length;
      }
    }
    return this.avail >= n;
  }
  /** Up to `max` bytes (at least one) from the current chunk; null at the end of the stream. */
  async take(max: number): Promise<Buffer | null> {
    if (this.avail === 0 && !(await this.fill(1))) return null;
    const c = this.chunks[0]!;
    const n = Math.min(max, c.length - this.head);
    const out = c.subarray(this.head, this.head + n);
    this.head += n;
    this.avail -= n;
    if (this.head === c.length) {
      this.chunks.shift();
      this.head = 0;
    }
    return out;
  }
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const first = this.chunks[0];
    if (n === 0 || !first) return Buffer.alloc(0);
    if (first.length - this.head >= n) return (await this.take(n))!;
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = (await this.take(n - at))!;
      c.copy(out, at);
      at += c.length;
    }
    return out;
  }
  /** Exactly n bytes, as a function giving the next chunk of them (null after the last). */
  exactly(n: number): () => Promise<Buffer | null> {
    let left = n;
    return async () => {
      if (left <= 0) return null;
      const c = await this.take(left);
      if (!c) throw new ArtifactError("the archive ends in the middle of a file");
      left -= c.length;
      return c;
    };
  }
  /** End the source (a zstd process, a file stream) even when the archive was refused half-way. */
  async close() {
    await this.it.return?.(undefined).catch(() => {});
  }
  async skip(n: number) {
    let left = n;
    while (left > 0) {
      const c = await this.take(left);
      if (!c) throw new ArtifactError("the archive ends in the middle of a file");
      left -= c.length;
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

/** PAX records (`<len> <key>=<value>\n`, len counting bytes), read in one pass. */
function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < buf.length) {
    const sp = buf.indexOf(0x20, p);
    if (sp < 0) break;
    const len = Number.parseInt(buf.toString("latin1", p, sp), 10);
    if (!(len > 0)) break;
    const end = Math.min(p + len, buf.length);
    const kv = buf.toString("utf8", sp + 1, Math.max(sp + 1, end - 1));
    const eq = kv.indexOf("=");
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    p += len;
  }
  return out;
}

/** Extract a tar stream below root, checking every entry. */
async function extractTar(src: AsyncIterable<Uint8Array>, root: string, u: Unpacking) {
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
      if (!Number.isSafeInteger(size) || size < 0)
        throw new ArtifactError(
          `a tar entry with the size ${JSON.stringify(pax.size ?? cstr(h.subarray(124, 136)))}: refused`,
        );
      const padded = Math.ceil(size / 512) * 512;
      if (type === "x" || type === "g" || type === "L" || type === "K") {
        if (size > 1024 * 1024) throw new ArtifactError("a tar header record is larger than 1 MB: refused");
        const body = await r.read(padded);
        if (!body) throw new ArtifactError("the archive ends in a header");
        const text = body.subarray(0, size).toString("utf8");
        if (type === "x") pax = { ...pax, ...parsePax(body.subarray(0, size)) };
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
      u.budget.entry();
      const name = safeEntryName(rawName);
      if (name === null)
        throw new ArtifactError(`the archive entry "${rawName}" leaves the destination: refused`);
      const mode = octal(h.subarray(100, 108));
      if (name === "") {
        await r.skip(padded);
        continue;
      }
      if (type === "5") {
        await prepareParent(root, `${name}/x`, u);
        await r.skip(padded);
        continue;
      }
      if (type === "2") {
        if (linkName.startsWith("/"))
          throw new ArtifactError(`the link ${name} -> ${linkName} is absolute: refused`);
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), linkName));
        if (resolved === ".." || resolved.startsWith("../"))
          throw new ArtifactError(`the link ${name} -> ${linkName} leaves the destination: refused`);
        const target = await prepareParent(root, name, u);
        const st = await lstat(target).catch(() => null);
        if (st?.isDirectory()) throw new ArtifactError(`${name} is a folder; the archive has a link there`);
        if (st) await unlink(target);
        await symlink(linkName, target);
        u.created.push(target);
        await r.skip(padded);
        continue;
      }
      if (type === "1") throw new ArtifactError(`the hard link ${name} -> ${linkName} is refused`);
      if (type !== "0" && type !== "\0" && type !== "7")
        throw new ArtifactError(
          `the archive entry ${name} is a special file (type ${JSON.stringify(type)}): refused`,
        );
      const target = await prepareParent(root, name, u);
      await writeEntry(target, mode, r.exactly(size), u, size);
      await r.skip(padded - size);
      files++;
    }
    return files;
  } finally {
    await r.close();
  }
}

/** Bytes decoded ahead of the tar reader, so decoding and writing overlap. */
const READ_AHEAD = 8 * 1024 * 1024;

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
  pipeline(src, child.stdin).catch(() => child.kill("SIGKILL"));
  // zstd decodes up to READ_AHEAD bytes ahead while files are written (a pipe alone holds
  // 64 KiB, and a stream's own buffer as much): its output is queued here as it comes.
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const stdout = child.stdout;
  stdout.on("data", (c: Buffer) => {
    queue.push(c);
    queued += c.length;
    if (queued >= READ_AHEAD) stdout.pause();
    wake?.();
  });
  stdout.on("end", () => {
    ended = true;
    wake?.();
  });
  stdout.on("error", (e) => {
    failure = e;
    wake?.();
  });
  return (async function* () {
    try {
      for (;;) {
        const c = queue.shift();
        if (c) {
          queued -= c.length;
          if (queued < READ_AHEAD && stdout.isPaused()) stdout.resume();
          yield c;
          continue;
        }
        if (failure) throw failure;
        if (ended) break;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = null;
      }
      const code = await exited;
      if (code !== 0) throw new ArtifactError(`zstd failed: ${stderr.trim() || `exit ${code}`}`);
    } finally {
      child.kill("SIGKILL");
      stdout.destroy();
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

/** Read and inflate in 256 KiB chunks (the defaults, 64 KiB and 16 KiB, cost a callback each). */
const READ_CHUNK = 256 * 1024;

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
  const raw = createReadStream(file, {
    start,
    end: start + e.compressedSize - 1,
    highWaterMark: READ_CHUNK,
  });
  if (e.method === 0) return raw;
  if (e.method === 8) return raw.pipe(createInflateRaw({ chunkSize: READ_CHUNK }));
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
  const u = new Unpacking(budget);
  const rootBase = path.resolve(workspaceDir);
  try {
    const root = dest === "" ? rootBase : await prepareParent(rootBase, `${dest}/x`, u).then(path.dirname);
    if (dest !== "") {
      const st = await lstat(root).catch(() => null);
      if (!st) {
        await mkdir(root);
        u.created.push(root);
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
          files += await extractTar(zstdDecode(stream, opts.zstd), root, u);
        else if (/\.tar$/.test(name)) files += await extractTar(stream, root, u);
        else {
          budget.entry();
          const chunks = chunksOf(stream);
          try {
            await writeEntry(await prepareParent(root, name, u), 0o644, chunks.next, u);
          } finally {
            await chunks.close();
          }
          files++;
        }
        unpacked.push(name);
      }
    } else {
      const src = createReadStream(archive, { highWaterMark: READ_CHUNK });
      files += await extractTar(kind === "zstd" ? zstdDecode(src, opts.zstd) : src, root, u);
      unpacked.push(path.basename(archive));
    }
    return { files, bytes: budget.bytes, unpacked };
  } catch (err) {
    for (const p of u.created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => {});
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
