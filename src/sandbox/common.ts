import { constants } from "node:fs";
import { lchown, lstat, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { type CommandResult, type ProcessOptions, runProcess } from "../shared/process.js";
import { isScrubbedEnvName } from "./env.js";
import type { ExecOptions } from "./executor.js";

/**
 * What the sandbox backends (bwrap.ts, container.ts) share: the environment a sandboxed
 * command starts from (an allowlist, never the service's), the workspace's path inside, the
 * job's card device paths, and the host-side chores around them (workspace ownership, reaching
 * a bind source, finding a process tree from /proc).
 */

/** The uid and gid commands run as when the service runs as root: nobody/nogroup on Debian. */
export const DEFAULT_SANDBOX_UID = 65534;
export const DEFAULT_SANDBOX_GID = 65534;
/** HOME inside a sandbox: a tmpfs, thrown away with the sandbox. */
export const SANDBOX_HOME = "/home/sandbox";
export const SANDBOX_USER = "sandbox";
/** Where the job's card device nodes are on the host and inside. */
export const DEFAULT_DEVICE_DIR = "/dev/tenstorrent";
export const DEFAULT_SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The sandbox could not be set up (a missing binary, an unreachable path, an engine error). */
export class SandboxError extends Error {
  override name = "SandboxError";
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface SandboxEnvInput {
  /** The job's variables (spec.env), then the command's own (opts.env); later wins. */
  layers: ReadonlyArray<Readonly<Record<string, string>> | undefined>;
  /** PATH inside; omitted: none is set (a container keeps its image's). */
  path?: string;
  home?: string;
  user?: string;
  /** LANG and LC_ALL; omitted: left unset. */
  locale?: string;
  /** GIT_CONFIG_NOSYSTEM=1 (default): the host's /etc/gitconfig is not the job's. */
  noSystemGitConfig?: boolean;
}

/**
 * The complete environment of a sandboxed command: a fixed allowlist (HOME, TMPDIR, USER,
 * TERM=dumb, no git prompts, no host git config), then the layers. Names that look like
 * secrets are dropped from the layers as on the host backend, and so are names that are not
 * valid variable names. Nothing comes from process.env. Pure.
 */
export function sandboxEnv(i: SandboxEnvInput): Record<string, string> {
  const home = i.home ?? SANDBOX_HOME;
  const user = i.user ?? SANDBOX_USER;
  const out: Record<string, string> = {
    ...(i.path ? { PATH: i.path } : {}),
    HOME: home,
    USER: user,
    LOGNAME: user,
    TMPDIR: "/tmp",
    TERM: "dumb",
    ...(i.locale ? { LANG: i.locale, LC_ALL: i.locale } : {}),
    // Nothing may wait for a password on a terminal that is not there.
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "/bin/false",
    SSH_ASKPASS: "/bin/false",
    ...(i.noSystemGitConfig === false ? {} : { GIT_CONFIG_NOSYSTEM: "1" }),
  };
  for (const layer of i.layers) Object.assign(out, allowedEnv(layer));
  return out;
}

/** The variables of `env` a sandbox may get: valid names that do not look like secrets. Pure. */
export function allowedEnv(env: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) {
    if (ENV_NAME.test(k) && !isScrubbedEnvName(k)) out[k] = v;
  }
  return out;
}

/**
 * The folder a command runs in, inside the sandbox: `cwd` is a host path at or below the
 * workspace (default: the workspace), mapped below `mountPath`. Throws for anything outside.
 */
export function mapCwd(workspace: string, mountPath: string, cwd?: string): string {
  const rel = path.relative(workspace, path.resolve(workspace, cwd ?? workspace));
  if (rel === "") return mountPath;
  if (rel.startsWith("..") || path.isAbsolute(rel))
    throw new SandboxError(`cwd ${cwd} is outside the job's workspace ${workspace}`);
  return path.posix.join(mountPath, rel.split(path.sep).join("/"));
}

const SAFE_NAME = /^[A-Za-z0-9._-]+$/;

/** Host and sandbox paths of the job's card device nodes; card names are checked. Pure. */
export function cardDevices(
  cards: readonly string[],
  hostDir = DEFAULT_DEVICE_DIR,
  sandboxDir = DEFAULT_DEVICE_DIR,
): Array<{ host: string; sandbox: string }> {
  return cards.map((card) => {
    if (!SAFE_NAME.test(card) || card === "." || card === "..")
      throw new SandboxError(`unsafe card device name "${card}"`);
    return { host: path.join(hostDir, card), sandbox: path.posix.join(sandboxDir, card) };
  });
}

/** Throws unless every card node the job holds is there (a clear error, not the engine's). */
export async function assertDevices(devices: ReadonlyArray<{ host: string }>): Promise<void> {
  for (const d of devices) {
    const st = await stat(d.host).catch(() => null);
    if (!st) throw new SandboxError(`the job's card device ${d.host} does not exist on this host`);
  }
}

/** The hugetlbfs mount points the TT runtime uses (`/dev/hugepages`, `/dev/hugepages-1G`), if any. */
export async function findHugepageMounts(devDir = "/dev"): Promise<string[]> {
  try {
    const names = await readdir(devDir, { withFileTypes: true });
    return names
      .filter((d) => d.isDirectory() && /^hugepages/.test(d.name))
      .map((d) => path.join(devDir, d.name))
      .sort();
  } catch {
    return [];
  }
}

export interface OwnershipResult {
  /** Entries whose owner was changed. */
  changed: number;
  /** Hard-linked files, and entries on another file system, left alone. */
  skipped: string[];
}

/**
 * Give the workspace to the sandbox's uid and gid, so commands can write it: every entry,
 * recursively, by lchown (a symbolic link is changed itself, never followed, and never
 * descended into). A non-directory with more than one hard link is skipped, so a link to a
 * file elsewhere on the host never changes hands, and so are entries on another file system.
 * Call it as root before the job's first command (nothing in the sandbox may race it).
 */
export async function prepareWorkspaceOwnership(
  dir: string,
  uid: number,
  gid: number,
): Promise<OwnershipResult> {
  const root = path.resolve(dir);
  const top = await lstat(root);
  if (!top.isDirectory()) throw new SandboxError(`workspace ${root} is not a directory`);
  const result: OwnershipResult = { changed: 0, skipped: [] };
  const fix = async (p: string, st: Awaited<ReturnType<typeof lstat>>) => {
    if (st.uid !== uid || st.gid !== gid) {
      await lchown(p, uid, gid);
      result.changed++;
    }
  };
  await fix(root, top);
  let level = [root];
  while (level.length > 0) {
    const next: string[] = [];
    for (const d of level) {
      const entries = await readdir(d);
      // Bounded parallelism: libuv's pool does the work; 64 in flight keeps it busy.
      for (let i = 0; i < entries.length; i += 64) {
        await Promise.all(
          entries.slice(i, i + 64).map(async (name) => {
            const p = path.join(d, name);
            const st = await lstat(p);
            if (st.dev !== top.dev || (!st.isDirectory() && st.nlink > 1)) {
              result.skipped.push(p);
              return;
            }
            await fix(p, st);
            if (st.isDirectory()) next.push(p);
          }),
        );
      }
    }
    level = next;
  }
  return result;
}

/**
 * Throws unless a process with this uid and gid (and supplementary groups) can reach `target`
 * (search permission on every folder above it, and on it when it is a folder): what a
 * sandbox that binds the path needs, since the bind is made with the sandbox's credentials.
 */
export async function assertReachable(target: string, uid: number, gids: readonly number[]): Promise<void> {
  if (uid === 0) return;
  const abs = path.resolve(target);
  const parts = abs.split("/").filter(Boolean);
  let cur = "/";
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = path.join(cur, parts[i - 1]!);
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(cur);
    } catch (err) {
      throw new SandboxError(`cannot bind ${abs} into the sandbox: ${(err as Error).message}`);
    }
    if (!st.isDirectory()) continue;
    const bit =
      st.uid === uid ? constants.S_IXUSR : gids.includes(st.gid) ? constants.S_IXGRP : constants.S_IXOTH;
    if ((st.mode & bit) === 0)
      throw new SandboxError(
        `the sandbox uid ${uid} cannot reach ${abs}: ${cur} is mode ${(st.mode & 0o7777).toString(8)} ` +
          `owned by ${st.uid}:${st.gid} (make the folders above workspaces searchable, e.g. chmod 0711)`,
      );
  }
}

/** Search PATH (of the service, once at setup) for a binary; absolute paths pass through. */
export async function findBinary(name: string, searchPath = process.env.PATH ?? ""): Promise<string | null> {
  if (name.includes("/")) return (await isExecutable(name)) ? path.resolve(name) : null;
  for (const dir of searchPath.split(":").filter(Boolean)) {
    const p = path.join(dir, name);
    if (await isExecutable(p)) return p;
  }
  return null;
}

async function isExecutable(p: string): Promise<boolean> {
  try {
    const st = await stat(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

export interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  /** Start time in clock ticks since boot: with the pid, names one process for good. */
  start: number;
}

export async function readProc(pid: number | string): Promise<ProcInfo | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itrealvalue starttime ...": split after the last ")".
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pid: Number(pid), ppid: Number(rest[1]), state: rest[0] ?? "", start: Number(rest[19]) };
  } catch {
    return null;
  }
}

/** Every live process on the host, from /proc. */
export async function listProcs(): Promise<ProcInfo[]> {
  const names = (await readdir("/proc")).filter((n) => /^\d+$/.test(n));
  const all = await Promise.all(names.map((n) => readProc(n)));
  return all.filter((p): p is ProcInfo => p !== null && p.state !== "Z" && p.state !== "X");
}

/** Is this very process (pid and start time) still running (a zombie is not)? */
export async function procAlive(p: Pick<ProcInfo, "pid" | "start">): Promise<boolean> {
  const now = await readProc(p.pid);
  return now !== null && now.start === p.start && now.state !== "Z" && now.state !== "X";
}

/** The descendants of `pid` (not itself), from one /proc scan. */
export function descendants(procs: readonly ProcInfo[], pid: number): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const out: ProcInfo[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * runProcess with what a backend passes on from ExecOptions (timeout, signal, stdin, output
 * bounds), the leader's pid kept in `live` while it runs (so killAll can find it).
 */
export async function runTracked(
  cmd: string | readonly string[],
  base: ProcessOptions,
  opts: ExecOptions,
  live: Set<number>,
): Promise<CommandResult> {
  let pid: number | undefined;
  const r = await runProcess(cmd, {
    ...base,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.headBytes !== undefined ? { headBytes: opts.headBytes } : {}),
    ...(opts.tailBytes !== undefined ? { tailBytes: opts.tailBytes } : {}),
    onSpawn: (p) => {
      pid = p;
      live.add(p);
    },
  });
  if (pid !== undefined) live.delete(pid);
  return r;
}

/** Poll `cond` every `stepMs` until it holds or `ms` passed; the last answer. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  stepMs = 20,
): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}
