import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import path from "node:path";
import { type CommandResult, killGroup, pidAlive, runProcess } from "../shared/process.js";
import {
  allowedEnv,
  assertDevices,
  cardDevices,
  DEFAULT_DEVICE_DIR,
  DEFAULT_SANDBOX_GID,
  DEFAULT_SANDBOX_UID,
  findHugepageMounts,
  mapCwd,
  runTracked,
  SANDBOX_HOME,
  SandboxError,
  sandboxEnv,
} from "./common.js";
import {
  assembleExecutor,
  type ExecOptions,
  ExecutorDisposedError,
  type ExecutorFactory,
  type ExecutorSpec,
  type JobExecutor,
} from "./executor.js";

/**
 * The container backend, for a docker- or podman-compatible CLI: one container per job, made
 * from the job's image (the CI's), kept alive by a long sleep under the engine's init, and
 * every command an `exec` into it. The container runs as an unprivileged uid with no
 * capabilities and no-new-privileges, a read-only root with tmpfs /tmp and HOME, the workspace
 * as its only writable bind, no network unless allowed, only the job's card devices and the
 * hugepages mounts. Its environment is the image's plus an allowlist and the job's variables;
 * the engine CLI itself starts from a minimal environment, so nothing of the service's reaches
 * the container or the processes in it.
 *
 * Killing: a process started by `exec` outlives a killed exec client, so a command that times
 * out or is cancelled, and killAll, remove the whole container (`rm -f`, SIGKILL to everything
 * in it, no grace) and the next command starts a fresh one: /tmp and HOME are empty again,
 * the workspace is kept. What a command leaves running in the background when it ends by
 * itself lives until the next killAll (the harness calls it at phase ends, before gates,
 * commits and pushes). A detached watchdog per container removes it when the worker dies
 * (kill -9 included: it waits on a pipe only the worker holds); removeStaleContainers()
 * removes what even that missed, at the worker's next start.
 */

export type EngineFlavor = "podman" | "docker";

export interface ContainerEngineOptions {
  /** The CLI: "podman" (default), "docker", or a path to either. */
  binary?: string;
  /** Which CLI dialect (default: from the binary's name; "podman" unless it says docker). */
  flavor?: EngineFlavor;
  /** Global flags before the subcommand (default: ENGINE_DEFAULTS[flavor].globalArgs). */
  globalArgs?: string[];
  /** The CLI's complete environment (default: the ENGINE_ENV_NAMES of process.env). */
  env?: Record<string, string>;
}

/**
 * Per-engine defaults, as measured on the development machine (Debian 12, podman 4.3.1 as
 * root, no systemd, cgroup v1, runc but no crun, open-files hard limit 20000):
 * - `--cgroup-manager=cgroupfs`: podman's default, systemd, is not there to ask for cgroups;
 * - `--runtime runc`: podman 4.3's default runtime, crun, is not installed;
 * - `--ulimit nofile=8192:8192 --ulimit nproc=8192:8192`: the engine's default nofile
 *   (1048576) is above the host's hard limit, and runc then fails with "error setting rlimit
 *   type 7: operation not permitted"; explicit limits below the host's work everywhere.
 * On a host with systemd and crun, pass `globalArgs: []`; anything else goes in runArgs.
 */
export const ENGINE_DEFAULTS: Readonly<Record<EngineFlavor, { globalArgs: string[]; runArgs: string[] }>> = {
  podman: {
    globalArgs: ["--cgroup-manager=cgroupfs", "--runtime", "runc"],
    runArgs: ["--ulimit", "nofile=8192:8192", "--ulimit", "nproc=8192:8192"],
  },
  docker: {
    globalArgs: [],
    runArgs: ["--ulimit", "nofile=8192:8192", "--ulimit", "nproc=8192:8192"],
  },
};

/** What the engine CLI may see of the service's environment: where to find itself and its store. */
export const ENGINE_ENV_NAMES: readonly string[] = [
  "PATH",
  "HOME",
  "TMPDIR",
  "XDG_RUNTIME_DIR",
  "XDG_CONFIG_HOME",
  "XDG_DATA_HOME",
  "CONTAINERS_CONF",
  "CONTAINERS_STORAGE_CONF",
  "CONTAINERS_REGISTRIES_CONF",
  "CONTAINER_HOST",
  "CONTAINER_CONNECTION",
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
];

const DEFAULT_ENGINE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function engineFlavor(e: ContainerEngineOptions = {}): EngineFlavor {
  return e.flavor ?? (/docker/i.test(path.basename(e.binary ?? "podman")) ? "docker" : "podman");
}

/** argv and environment of one engine CLI call. Pure apart from reading process.env. */
export function engineCommand(
  e: ContainerEngineOptions,
  args: readonly string[],
): { argv: string[]; env: Record<string, string> } {
  const flavor = engineFlavor(e);
  const env: Record<string, string> = {};
  if (e.env) Object.assign(env, e.env);
  else {
    for (const k of ENGINE_ENV_NAMES) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    env.PATH ??= DEFAULT_ENGINE_PATH;
  }
  return {
    argv: [e.binary ?? "podman", ...(e.globalArgs ?? ENGINE_DEFAULTS[flavor].globalArgs), ...args],
    env,
  };
}

/** `rm -f` without the engine's stop timeout. */
function removeArgs(flavor: EngineFlavor, names: readonly string[]): string[] {
  return flavor === "podman" ? ["rm", "-f", "-t", "0", ...names] : ["rm", "-f", ...names];
}

export interface ContainerOptions {
  engine?: ContainerEngineOptions;
  /** The job's image (present in the engine's store: see `pull`). */
  image: string;
  /** Label autofix.worker (default `<hostname>:<pid>`, the worker's own default name). */
  workerName?: string;
  /** The container's uid and gid (default 65534:65534); the workspace must be theirs. */
  uid?: number;
  gid?: number;
  /** Supplementary groups (`--group-add`), e.g. the group owning the card nodes. */
  groups?: number[];
  /** Where the workspace appears inside (default: its host path; CI images may want /work). */
  mountPath?: string;
  /** Network: false (default) `--network none`; true the engine's default network; a string names one. */
  network?: boolean | string;
  /** Extra host paths bound read-only (a string binds at the same path). */
  readOnlyBinds?: Array<string | { source: string; target: string }>;
  /** Operator-side mounts (worker settings only): read-write unless readOnly. */
  binds?: Array<{ source: string; target: string; readOnly: boolean }>;
  /** `--shm-size` (an allowlisted option of the job's environment). */
  shmSize?: string;
  /** What the commands run in, handed out as the executor's details. */
  details?: Record<string, string>;
  deviceDir?: string;
  sandboxDeviceDir?: string;
  /** hugetlbfs mounts to bind (default: /dev/hugepages* found on the host). */
  hugepages?: string[];
  /** PATH inside (default: the image's). */
  path?: string;
  /** LANG and LC_ALL inside (default: the image's). */
  locale?: string;
  /** Constant variables every command gets, below the job's (spec.env, which wins). */
  extraEnv?: Record<string, string>;
  /** Extra `run` flags (default: ENGINE_DEFAULTS[flavor].runArgs). */
  runArgs?: string[];
  /** Run the engine's init as PID 1, to reap orphans (default true). */
  init?: boolean;
  /** PID 1's command, which only has to stay alive (default `sleep 2147483647`). */
  keepAlive?: string[];
  /** Image pull policy for `run` (default "never": the image is prepared beforehand). */
  pull?: "never" | "missing" | "always" | "newer";
  /** Bound on engine calls that start and remove containers. */
  engineTimeoutMs?: number;
}

export type ContainerExecutorOptions = ExecutorSpec & ContainerOptions;

/** What the engine says when an exec finds no running container. */
const CONTAINER_GONE = /no such container|is not running|container state improper|not running/i;

/** Containers this process made: removeStaleContainers leaves them alone. */
const ownContainers = new Set<string>();

function containerName(jobId: string): string {
  const slug = jobId.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 60);
  return `autofix-${slug}-${randomBytes(3).toString("hex")}`;
}

function bindSpec(source: string, target: string, readOnly: boolean): string {
  for (const p of [source, target]) {
    if (/[,\n]/.test(p) || !path.isAbsolute(p)) throw new SandboxError(`cannot bind "${p}" into a container`);
  }
  return `type=bind,source=${source},destination=${target}${readOnly ? ",readonly" : ""}`;
}

interface Box {
  name: string;
  started: Promise<void>;
  watchdog: ChildProcess | undefined;
}

/** Where a host path below the workspace is inside the container (others are unchanged). Pure. */
export function inContainerPath(hostPath: string, workspace: string, mountPath: string): string {
  const rel = path.relative(workspace, path.resolve(hostPath));
  if (rel === "") return mountPath;
  if (rel.startsWith("..") || path.isAbsolute(rel)) return hostPath;
  return path.posix.join(mountPath, rel);
}

export function createContainerExecutor(o: ContainerExecutorOptions): JobExecutor {
  const engine = o.engine ?? {};
  const flavor = engineFlavor(engine);
  const workspace = path.resolve(o.workspace);
  const mountPath = o.mountPath ?? workspace;
  const jobEnv = { ...o.env };
  // The compiler cache hashes paths below CCACHE_BASEDIR as relative ones: it names the work
  // tree as the commands see it, which is the mount path in here (/work for tt-metal), so a
  // later job in a new workspace folder still hits.
  if (jobEnv.CCACHE_BASEDIR)
    jobEnv.CCACHE_BASEDIR = inContainerPath(jobEnv.CCACHE_BASEDIR, workspace, mountPath);
  const uid = o.uid ?? DEFAULT_SANDBOX_UID;
  const gid = o.gid ?? DEFAULT_SANDBOX_GID;
  const timeoutMs = o.engineTimeoutMs ?? 120_000;
  const worker = o.workerName ?? `${hostname()}:${process.pid}`;
  let disposed = false;
  let box: Box | undefined;
  /** Counts recycles: a command still waiting for its container when one comes is cancelled, not started. */
  let epoch = 0;
  /** Running exec clients (process groups). */
  const clients = new Set<number>();

  const engineRun = (args: readonly string[], ms = timeoutMs) => {
    const { argv, env } = engineCommand(engine, args);
    return runProcess(argv, { env, timeoutMs: ms, cwd: "/", headBytes: 4096, tailBytes: 16 * 1024 });
  };

  const runArgs = async (name: string): Promise<string[]> => {
    const baseEnv = sandboxEnv({
      layers: [o.extraEnv, jobEnv],
      ...(o.path ? { path: o.path } : {}),
      ...(o.locale ? { locale: o.locale } : {}),
      // The image's own /etc/gitconfig is the CI's: keep it.
      noSystemGitConfig: false,
    });
    const a = [
      "run",
      "-d",
      "--name",
      name,
      "--label",
      `autofix.job=${o.jobId}`,
      "--label",
      `autofix.worker=${worker}`,
      "--label",
      `autofix.host=${hostname()}`,
      "--label",
      `autofix.pid=${process.pid}`,
      ...(o.init === false ? [] : ["--init"]),
      `--pull=${o.pull ?? "never"}`,
      "--user",
      `${uid}:${gid}`,
      ...(o.groups ?? []).flatMap((g) => ["--group-add", String(g)]),
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges",
      "--read-only",
      "--tmpfs",
      "/tmp:rw,exec,nosuid,nodev,mode=1777",
      // No uid= for tmpfs in the CLIs: a sticky world-writable HOME in a one-user container.
      "--tmpfs",
      `${SANDBOX_HOME}:rw,exec,nosuid,nodev,mode=1777`,
      "--hostname",
      "autofix-sandbox",
      "--mount",
      bindSpec(workspace, mountPath, false),
      "--workdir",
      mountPath,
      ...(o.network === true ? [] : ["--network", typeof o.network === "string" ? o.network : "none"]),
      // Podman passes the CLI's proxy variables into the container by default; they may hold credentials.
      ...(flavor === "podman" ? ["--http-proxy=false"] : []),
    ];
    for (const b of o.readOnlyBinds ?? []) {
      const { source, target } = typeof b === "string" ? { source: b, target: b } : b;
      a.push("--mount", bindSpec(path.resolve(source), target, true));
    }
    for (const b of o.binds ?? []) a.push("--mount", bindSpec(path.resolve(b.source), b.target, b.readOnly));
    // The repository's build cache (ExecutorSpec.cacheMounts): read-write, at the same path by default.
    for (const m of o.cacheMounts ?? [])
      a.push("--mount", bindSpec(path.resolve(m.source), m.target ?? path.resolve(m.source), false));
    if (o.shmSize) {
      if (!/^[1-9][0-9]*[bkmg]?$/.test(o.shmSize)) throw new SandboxError(`bad --shm-size "${o.shmSize}"`);
      a.push(`--shm-size=${o.shmSize}`);
    }
    const devices = cardDevices(
      o.cards,
      o.deviceDir ?? DEFAULT_DEVICE_DIR,
      o.sandboxDeviceDir ?? DEFAULT_DEVICE_DIR,
    );
    await assertDevices(devices);
    for (const d of devices) a.push("--device", `${d.host}:${d.sandbox}`);
    for (const h of o.hugepages ?? (await findHugepageMounts())) {
      if (!(o.binds ?? []).some((b) => b.target === h)) a.push("--mount", bindSpec(h, h, false));
    }
    for (const [k, v] of Object.entries(baseEnv)) a.push("-e", `${k}=${v}`);
    a.push(...(o.runArgs ?? ENGINE_DEFAULTS[flavor].runArgs));
    const [entry, ...rest] = o.keepAlive ?? ["sleep", "2147483647"];
    a.push("--entrypoint", entry!, o.image, ...rest);
    return a;
  };

  const removeBox = async (b: Box) => {
    await b.started.catch(() => {});
    let r = await engineRun(removeArgs(flavor, [b.name]), 60_000);
    if (r.exitCode !== 0 && !/no such container/i.test(r.stderr))
      r = await engineRun(removeArgs(flavor, [b.name]), 60_000);
    if (r.exitCode !== 0 && !/no such container/i.test(r.stderr)) {
      // The watchdog stays: it removes the container when this process ends.
      throw new SandboxError(
        `could not remove the job's container ${b.name}: ${r.stderr.trim().slice(-500)}`,
      );
    }
    ownContainers.delete(b.name);
    stopWatchdog(b.watchdog);
  };

  const ensure = (): Box => {
    if (box) return box;
    const name = containerName(o.jobId);
    ownContainers.add(name);
    // The watchdog first: from here on, a dead worker means a removed container.
    const b: Box = { name, watchdog: spawnWatchdog(engine, name), started: Promise.resolve() };
    b.started = (async () => {
      const r = await engineRun(await runArgs(name));
      if (r.exitCode !== 0) {
        throw new SandboxError(
          `could not start the job's container (${engine.binary ?? "podman"} run ${o.image}): ${
            r.timedOut ? "timed out" : (r.stderr.trim() || r.stdout.trim()).slice(-2000)
          }`,
        );
      }
    })();
    b.started.catch(() => {
      if (box === b) box = undefined;
      void removeBox(b).catch(() => {});
    });
    box = b;
    return b;
  };

  /** Kill everything in the container: remove it; the next command gets a fresh one. */
  const recycle = async (only?: Box) => {
    const b = box;
    if (!b || (only && b !== only)) return;
    box = undefined;
    epoch++;
    for (const c of clients) killGroup(c, "SIGKILL");
    await removeBox(b);
  };

  const run = async (command: string | readonly string[], opts: ExecOptions = {}): Promise<CommandResult> => {
    if (disposed)
      throw new ExecutorDisposedError(
        `the job's executor was disposed of; not running ${String(command).slice(0, 80)}`,
      );
    const cwd = mapCwd(workspace, mountPath, opts.cwd);
    const argv = typeof command === "string" ? ["bash", "-c", command] : [...command];
    if (opts.signal?.aborted) return runProcess(argv, { env: {}, signal: opts.signal });
    const asked = epoch;
    const b = ensure();
    await b.started;
    if (disposed)
      throw new ExecutorDisposedError("the job's executor was disposed of while the command was set up");
    if (epoch !== asked) return runProcess(argv, { env: {}, signal: AbortSignal.abort() });
    const env = Object.entries(allowedEnv(opts.env)).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    const { argv: full, env: cliEnv } = engineCommand(engine, [
      "exec",
      ...(opts.input !== undefined ? ["-i"] : []),
      "--user",
      `${uid}:${gid}`,
      "-w",
      cwd,
      ...env,
      b.name,
      ...argv,
    ]);
    const r = await runTracked(
      full,
      { cwd: "/", env: cliEnv, killGraceMs: opts.killGraceMs ?? 500 },
      opts,
      clients,
    );
    // The exec client is gone, what it started may not be: take the container with it.
    if (r.timedOut || r.cancelled) {
      await recycle(b);
      // Whatever the killed client said, the command died with its container.
      return { ...r, exitCode: null, signal: "SIGKILL" };
    }
    // The container is gone or stopped (its PID 1 killed, removed from outside): start afresh next time.
    if (r.exitCode !== 0 && r.exitCode !== null && r.exitCode >= 125 && CONTAINER_GONE.test(r.stderr))
      await recycle(b);
    return r;
  };

  // Anything may be left running in the container, so the container goes (the next command starts another).
  const killAll = () => recycle();

  return assembleExecutor({
    kind: "container",
    workspace,
    jobEnv,
    run,
    killAll,
    markDisposed: () => {
      disposed = true;
    },
    release: () => recycle(),
    ...(o.details ? { details: o.details } : {}),
  });
}

/**
 * A detached `sh` that waits on a pipe only this process holds, and removes the container
 * when the pipe closes: when this process dies, however it dies. stopWatchdog() ends it
 * without removing anything.
 */
function spawnWatchdog(engine: ContainerEngineOptions, name: string): ChildProcess | undefined {
  const { argv, env } = engineCommand(engine, removeArgs(engineFlavor(engine), [name]));
  try {
    const child = spawn("/bin/sh", ["-c", 'read -r line; exec "$@"', "autofix-container-watchdog", ...argv], {
      env,
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
    });
    child.on("error", () => {});
    child.stdin?.on("error", () => {});
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  } catch {
    return undefined;
  }
}

function stopWatchdog(w: ChildProcess | undefined) {
  if (!w?.pid) return;
  killGroup(w.pid, "SIGKILL");
  w.stdin?.destroy();
}

export interface StaleOptions {
  /** Is a process alive? (default: signal 0) */
  isAlive?: (pid: number) => boolean;
  /** This host's name as in the autofix.host label (default os.hostname()). */
  host?: string;
}

/**
 * Remove the job containers a worker left behind: those labelled with this worker's name that
 * this process did not make (a previous run under the same name), and those of this host whose
 * worker process is dead (whatever its name: the default name holds the pid). Containers of
 * live workers are kept. Returns the names removed.
 */
export async function removeStaleContainers(
  engine: ContainerEngineOptions,
  workerName: string,
  opts: StaleOptions = {},
): Promise<string[]> {
  const isAlive = opts.isAlive ?? pidAlive;
  const host = opts.host ?? hostname();
  const call = (args: string[]) => {
    const { argv, env } = engineCommand(engine, args);
    return runProcess(argv, { env, cwd: "/", timeoutMs: 60_000, headBytes: 0, tailBytes: 4 * 1024 * 1024 });
  };
  const ps = await call(["ps", "-a", "--filter", "label=autofix.worker", "--format", "{{.Names}}"]);
  if (ps.exitCode !== 0) throw new SandboxError(`could not list containers: ${ps.stderr.trim()}`);
  const names = ps.stdout.split(/\s+/).filter(Boolean);
  if (names.length === 0) return [];
  const inspect = await call(["inspect", "--type", "container", ...names]);
  let details: Array<{ Name?: string; Config?: { Labels?: Record<string, string> | null } }>;
  try {
    details = JSON.parse(inspect.stdout || "[]");
  } catch {
    throw new SandboxError(`could not read container details: ${inspect.stderr.trim()}`);
  }
  const stale: string[] = [];
  for (const d of details) {
    const name = (d.Name ?? "").replace(/^\//, "");
    const labels = d.Config?.Labels ?? {};
    if (!name || ownContainers.has(name)) continue;
    const pid = Number(labels["autofix.pid"]);
    const sameName = labels["autofix.worker"] === workerName;
    const deadHere = labels["autofix.host"] === host && Number.isInteger(pid) && pid > 0 && !isAlive(pid);
    if (sameName || deadHere) stale.push(name);
  }
  if (stale.length > 0) {
    const r = await call(removeArgs(engineFlavor(engine), stale));
    if (r.exitCode !== 0) throw new SandboxError(`could not remove stale containers: ${r.stderr.trim()}`);
  }
  return stale;
}

/** The factory the worker uses for container sandboxes. */
export function containerExecutorFactory(options: ContainerOptions): ExecutorFactory {
  return async (spec) => createContainerExecutor({ ...spec, ...options });
}

/** Is the engine usable here? For diagnostics and test skips. */
export async function engineAvailable(
  engine: ContainerEngineOptions = {},
): Promise<{ ok: boolean; detail: string }> {
  const { argv, env } = engineCommand(engine, ["version"]);
  const r = await runProcess(argv, { env, timeoutMs: 30_000 });
  return { ok: r.exitCode === 0, detail: r.output.trim().split("\n").slice(0, 3).join(" | ") };
}

/**
 * Make sure an image is in the engine's store: present, or pulled (with the engine's own
 * credentials, never the job's; CI images are large, so the bound is long). Pull output is
 * the engine's; only its last lines come back on failure.
 */
export async function ensureImage(
  engine: ContainerEngineOptions,
  image: string,
  timeoutMs = 60 * 60_000,
): Promise<{ ok: true; pulled: boolean } | { ok: false; detail: string }> {
  const call = (args: string[], ms: number) => {
    const { argv, env } = engineCommand(engine, args);
    return runProcess(argv, { env, cwd: "/", timeoutMs: ms, headBytes: 0, tailBytes: 8 * 1024 });
  };
  const present = await call(["image", "inspect", "--format", "{{.Id}}", image], 60_000);
  if (present.exitCode === 0) return { ok: true, pulled: false };
  const pulled = await call(["pull", "--quiet", image], timeoutMs);
  if (pulled.exitCode === 0) return { ok: true, pulled: true };
  return {
    ok: false,
    detail: pulled.timedOut
      ? "the pull timed out"
      : (pulled.stderr.trim() || pulled.stdout.trim()).split("\n").slice(-3).join(" | ").slice(0, 400),
  };
}
