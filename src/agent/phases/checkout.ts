import { lstat, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { importCommits } from "../../git/import.js";
import { SAFE_GIT_CONFIG, SAFE_GIT_ENV } from "../../git/safe.js";
import { checkoutSubmodulesFromStores } from "../../git/submodule-checkout.js";
import { scrubEnv } from "../../sandbox/env.js";
import type { JobExecutor } from "../../sandbox/executor.js";
import { createHostExecutor } from "../../sandbox/host.js";
import { describeFailure, runHostCommand } from "../../shared/process.js";

/**
 * The gate checkout: a second job repository, made fresh for every gate check, holding exactly
 * the commit the gate proves and nothing else. Nothing of the workspace comes along: no
 * untracked or ignored files, no index flags (skip-worktree, assume-unchanged), no
 * `.git/info/attributes` or `.git/info/exclude`, no config, filters or hooks of the model's.
 *
 * - `git init` in a folder next to the workspace; its `objects/info/alternates` lists the
 *   object stores the workspace borrowed from when the run started (the worker's mirror, the
 *   person's repository), read at setup before any command of the model ran.
 * - The gated commit and what it adds to the base are imported from the workspace's objects
 *   the way the push imports them (src/git/import.ts): `index-pack` recomputes every object
 *   id, so an object file the model planted under a false name cannot stand in for the real
 *   content.
 * - `git checkout --detach <commit>` with hooks off, `core.attributesFile=/dev/null`,
 *   GIT_ATTR_NOSYSTEM, no global or system config (so no filter, smudge or LFS runs).
 *
 * Every git command here is the service's own (on the host, like the push); the test runs in
 * the gate's executor, made for this folder alone (RunFixAgentOptions.gateExecutor), so in a
 * sandbox the workspace is not even visible to it.
 */

const GATE_GIT_CONFIG = [
  ...SAFE_GIT_CONFIG,
  "-c",
  "core.attributesFile=/dev/null",
  "-c",
  "core.symlinks=true",
];
const gateGitEnv = () => scrubEnv(process.env, { ...SAFE_GIT_ENV, GIT_ATTR_NOSYSTEM: "1" });

export class GateCheckoutError extends Error {
  override name = "GateCheckoutError";
}

/** Trusted host git in a folder (never the workspace). Returns stdout; throws on failure. */
export async function hostGit(
  cwd: string,
  args: string[],
  opts: { signal?: AbortSignal; allowFailure?: boolean } = {},
): Promise<{ stdout: string; exitCode: number }> {
  const r = await runHostCommand(["git", ...GATE_GIT_CONFIG, "-C", cwd, ...args], {
    env: gateGitEnv(),
    timeoutMs: 10 * 60_000,
    maxOutputBytes: 64 * 1024 * 1024,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const exitCode = r.exitCode ?? -1;
  if (exitCode !== 0 && !opts.allowFailure) {
    throw new GateCheckoutError(describeFailure(`git ${args.slice(0, 3).join(" ")}`, r));
  }
  return { stdout: r.stdout.replace(/\n$/, ""), exitCode };
}

/**
 * The object stores the workspace borrows from (its `objects/info/alternates`), as absolute
 * paths; empty when it has all its objects itself. Read once at setup, before the model runs.
 */
export async function borrowedObjectStores(workspace: string): Promise<string[]> {
  const objects = path.join(workspace, ".git", "objects");
  const text = await readFile(path.join(objects, "info", "alternates"), "utf8").catch(() => "");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => path.resolve(objects, l));
}

export interface GateCheckout {
  /** The checkout (the gate executor's workspace). */
  dir: string;
  commit: string;
  /** Where the gate's commands run, once started. */
  exec: JobExecutor | null;
  /** Extra variables for every gate command (a fresh HOME on the host backend), once started. */
  env: Record<string, string>;
  /** Hand the checkout to the gate's executor (made here); trusted git must not run after. */
  start(): Promise<JobExecutor>;
  /** Trusted git in the checkout. */
  git(args: string[], opts?: { allowFailure?: boolean }): Promise<{ stdout: string; exitCode: number }>;
  /** Kill what the gate started, release its executor, remove the folders. */
  dispose(): Promise<void>;
}

export interface GateCheckoutInput {
  /** The job's executor (its workspace holds the objects to import). */
  exec: JobExecutor;
  /** Stores read at setup (borrowedObjectStores); the workspace's own objects when empty. */
  trustedStores: readonly string[];
  /** A commit the objects of which are already in the trusted stores (the base). */
  base: string;
  commit: string;
  /** Makes the executor for the checkout; default: a host executor with the job's env. */
  gateExecutor?: (dir: string) => Promise<JobExecutor>;
  signal?: AbortSignal;
}

let serial = 0;

/** A fresh checkout of `commit` next to the workspace, with its own executor. */
export async function createGateCheckout(o: GateCheckoutInput): Promise<GateCheckout> {
  const workspace = o.exec.workspace;
  const wsObjects = path.join(workspace, ".git", "objects");
  const name = `${path.basename(workspace)}.gate-${process.pid}-${++serial}`;
  // Without a gate executor, a sandboxed job can only run its gate below its own workspace.
  const sandboxedFallback = !o.gateExecutor && o.exec.kind !== "host";
  const root = sandboxedFallback ? path.join(workspace, ".git", "autofix-gate") : path.dirname(workspace);
  const dir = path.join(root, name);
  const home = path.join(root, `${name}.home`);
  let exec: JobExecutor | null = null;
  const dispose = async () => {
    if (exec && exec !== o.exec) await exec.dispose().catch(() => {});
    else await o.exec.killAll().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    await rm(home, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const sig = o.signal ? { signal: o.signal } : {};
    await hostGit(dir, ["init", "--quiet"], sig);
    const stores = o.trustedStores.length > 0 ? [...o.trustedStores] : [wsObjects];
    await writeFile(path.join(dir, ".git", "objects", "info", "alternates"), `${stores.join("\n")}\n`);
    await importCommits({
      into: dir,
      fromObjects: wsObjects,
      tips: [o.commit],
      have: [o.base],
      ...sig,
    });
    await hostGit(dir, ["-c", "checkout.workers=0", "checkout", "--quiet", "--detach", o.commit], sig);
    const head = (await hostGit(dir, ["rev-parse", "HEAD"], sig)).stdout.trim();
    if (head !== o.commit) throw new GateCheckoutError(`the gate checkout is at ${head}, not ${o.commit}`);
    // The commit's submodules, from the stores the workspace's submodules came from (no
    // network). One no store holds (a gitlink without a URL, which the workspace left empty
    // too, or one the model moved) stays empty, as in the workspace: the gate's build says so.
    await checkoutSubmodulesFromStores({
      dir,
      commit: o.commit,
      stores,
      git: { helperPath: "/dev/null", ...sig },
    });
    const dirty = (await hostGit(dir, ["status", "--porcelain", "--ignored", "--untracked-files=all"], sig))
      .stdout;
    if (dirty.trim()) throw new GateCheckoutError(`the gate checkout is not clean: ${dirty.slice(0, 200)}`);
    const gate: GateCheckout = {
      dir,
      commit: o.commit,
      exec: null,
      env: {},
      git: (args, opts = {}) => hostGit(dir, args, { ...sig, ...opts }),
      async start() {
        if (gate.exec) return gate.exec;
        // The test may write next to itself (logs/): the checkout belongs to whoever owns
        // the workspace. From here on no trusted git runs in it (the test may rewrite it).
        if (process.getuid?.() === 0) {
          const st = await lstat(workspace);
          await runHostCommand(["chown", "-R", `${st.uid}:${st.gid}`, dir]);
        }
        if (o.gateExecutor) exec = await o.gateExecutor(dir);
        else if (o.exec.kind === "host") {
          exec = createHostExecutor({ workspace: dir, env: { ...o.exec.jobEnv }, cards: [], jobId: "gate" });
        } else exec = o.exec;
        if (exec.kind === "host") {
          // The sandboxes give every command a fresh HOME; on the host the gate makes its own.
          await mkdir(home, { recursive: true, mode: 0o700 });
          gate.env = {
            HOME: home,
            XDG_CONFIG_HOME: path.join(home, ".config"),
            XDG_CACHE_HOME: path.join(home, ".cache"),
            XDG_DATA_HOME: path.join(home, ".local", "share"),
            GIT_CONFIG_GLOBAL: "/dev/null",
            GIT_CONFIG_NOSYSTEM: "1",
          };
        }
        gate.exec = exec;
        return exec;
      },
      dispose,
    };
    return gate;
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * Symbolic links the commits `from..to` add or change whose target is absolute or climbs out
 * of the repository: in the gate they could reach the workspace or the host (a file the model
 * keeps out of the commit), and in a clean clone they dangle. Read with trusted git.
 */
export async function escapingSymlinks(checkout: GateCheckout, from: string, to: string): Promise<string[]> {
  const raw = (await checkout.git(["diff", "--raw", "-z", "--no-renames", "--no-abbrev", from, to, "--"]))
    .stdout;
  const parts = raw.split("\0");
  const out: string[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i] ?? "";
    const file = parts[i + 1] ?? "";
    const m = /^:\d{6} (\d{6}) [0-9a-f]+ ([0-9a-f]+) ([A-Z])/.exec(meta);
    if (!m) continue;
    if (m[1] !== "120000" || m[3] === "D") continue;
    const target = (await checkout.git(["cat-file", "blob", m[2]!])).stdout;
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), target));
    if (path.posix.isAbsolute(target) || resolved === ".." || resolved.startsWith("../")) {
      out.push(`${file} -> ${target}`);
    }
  }
  return out;
}
