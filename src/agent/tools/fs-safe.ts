import { constants, type Stats } from "node:fs";
import { type FileHandle, open, readlink, realpath, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { confinePath, isInside, PathError } from "../paths.js";

/**
 * How the file tools open a file so that they cannot hang or wander: never following a link
 * (O_NOFOLLOW), never blocking (O_NONBLOCK: a FIFO opens at once and is then refused), only a
 * regular file with a single hard link and under a size cap, and with the check of where the
 * file is made on the open descriptor (its /proc/self/fd link, or its device and inode), not on
 * a path resolved again, so a directory swapped for a symlink after the path check is caught.
 */

/** Largest file the tools read or edit. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
const O_NOCTTY = constants.O_NOCTTY ?? 0;

export interface OpenedFile {
  fh: FileHandle;
  /** The workspace-relative path the model asked for. */
  rel: string;
  /** The descriptor's real path relative to the real workspace. */
  realRel: string;
  st: Stats;
  /** True when this call created the file. */
  created: boolean;
}

export interface OpenOptions {
  mode: "read" | "edit" | "write";
  /** Refuse before anything is created or changed: the real path is protected. */
  refuse?: (realRel: string) => string | undefined;
  maxBytes?: number;
  /** Tests only: runs between the path check and the open (to swap a folder for a link). */
  afterCheck?: () => Promise<void>;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isDirectory()) return "a folder";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** Where an open descriptor really is: /proc/self/fd on Linux, else the path checked by inode. */
async function descriptorPath(fh: FileHandle, abs: string, st: Stats): Promise<string> {
  try {
    const p = await readlink(`/proc/self/fd/${fh.fd}`);
    if (p.endsWith(" (deleted)")) throw new PathError("the file was removed while it was opened");
    return p;
  } catch (err) {
    if (err instanceof PathError) throw err;
    const real = await realpath(abs);
    const again = await stat(real);
    if (again.dev !== st.dev || again.ino !== st.ino)
      throw new PathError("the file changed while it was opened");
    return real;
  }
}

/** What a tool says about a path whose last component is a link. */
async function linkRefusal(workspace: string, abs: string, rel: string): Promise<PathError> {
  let target = "";
  try {
    target = await readlink(abs);
  } catch {
    // Gone or not a link after all.
  }
  return new PathError(
    `${rel} is a symbolic link${target ? ` (to ${target})` : ""}; the file tools do not follow links, use the target's path${
      target && isInside(path.resolve(workspace), path.resolve(path.dirname(abs), target))
        ? ""
        : " inside the workspace"
    }`,
  );
}

/**
 * Open a workspace file for a tool. Throws PathError (the message is for the model) on every
 * refusal; the caller closes `fh`.
 */
export async function openInWorkspace(
  workspace: string,
  requested: string,
  opts: OpenOptions,
): Promise<OpenedFile> {
  const { abs, rel } = await confinePath(workspace, requested);
  const realRoot = await realpath(workspace);
  const maxBytes = opts.maxBytes ?? MAX_FILE_BYTES;
  // The real folder the file will be in, checked before anything is created there.
  const realParent = await realpath(path.dirname(abs)).catch(() => null);
  if (realParent === null)
    throw new PathError(
      opts.mode === "write" ? `the folder of ${rel} does not exist` : `${rel} does not exist`,
    );
  if (!isInside(realRoot, realParent))
    throw new PathError(`path "${requested}" resolves outside the workspace through a symlink`);
  const expectedRel = path.relative(realRoot, path.join(realParent, path.basename(abs)));
  if (expectedRel.split(path.sep)[0] === ".git")
    throw new PathError(`path "${requested}" resolves into .git, which the tools do not touch`);
  const refusal = opts.refuse?.(expectedRel);
  if (refusal) throw new PathError(refusal);
  await opts.afterCheck?.();

  const base = O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  let fh: FileHandle;
  let created = false;
  try {
    fh = await open(abs, base | (opts.mode === "read" ? O_RDONLY : opts.mode === "edit" ? O_RDWR : O_WRONLY));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "EMLINK") throw await linkRefusal(workspace, abs, rel);
    if (code === "ENXIO") throw new PathError(`${rel} is a FIFO (named pipe) or socket; only regular files`);
    if (code === "EISDIR") throw new PathError(`${rel} is a folder`);
    if (code !== "ENOENT" || opts.mode !== "write") {
      if (code === "ENOENT") throw new PathError(`${rel} does not exist`);
      throw err;
    }
    try {
      fh = await open(abs, base | O_WRONLY | O_CREAT | O_EXCL, 0o644);
      created = true;
    } catch (err2) {
      const c2 = (err2 as NodeJS.ErrnoException).code;
      if (c2 === "EEXIST" || c2 === "ELOOP")
        throw new PathError(`${rel} changed while it was opened; try again`);
      throw err2;
    }
  }
  const discard = async (message: string): Promise<never> => {
    await fh.close().catch(() => {});
    if (created) await unlink(abs).catch(() => {});
    throw new PathError(message);
  };
  const st = await fh.stat();
  if (!st.isFile()) return discard(`${rel} is ${kindOf(st)}; the file tools only open regular files`);
  if (st.nlink > 1)
    return discard(
      `${rel} has ${st.nlink} hard links; the file tools refuse files that may also live outside the workspace`,
    );
  if (opts.mode !== "write" && st.size > maxBytes)
    return discard(`${rel} is ${st.size} bytes, more than the ${maxBytes}-byte limit of the file tools`);
  const real = await descriptorPath(fh, abs, st).catch((e: Error) => discard(e.message));
  if (!isInside(realRoot, real)) return discard(`${rel} resolves outside the workspace`);
  const realRel = path.relative(realRoot, real);
  if (realRel.split(path.sep)[0] === ".git") return discard(`${rel} resolves into .git`);
  if (realRel !== expectedRel) return discard(`${rel} moved while it was opened; try again`);
  return { fh, rel, realRel, st, created };
}

/** Read an opened file whole, at most `maxBytes` (a file growing past it is refused). */
export async function readOpened(
  f: OpenedFile,
  signal: AbortSignal,
  maxBytes = MAX_FILE_BYTES,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    if (signal.aborted) throw new PathError(`reading ${f.rel} stopped: the phase ended`);
    const buf = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - total));
    const { bytesRead } = await f.fh.read(buf, 0, buf.length, total);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
    if (total > maxBytes)
      throw new PathError(
        `${f.rel} grew past the ${maxBytes}-byte limit of the file tools while it was read`,
      );
  }
  return Buffer.concat(chunks, total);
}

/** Replace an opened file's content through its descriptor. */
export async function writeOpened(f: OpenedFile, content: string | Buffer): Promise<void> {
  const data = typeof content === "string" ? Buffer.from(content) : content;
  await f.fh.truncate(0);
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await f.fh.write(data, off, data.length - off, off);
    off += bytesWritten;
  }
}
