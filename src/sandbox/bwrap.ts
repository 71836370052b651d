import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type CommandResult, killGroup, pidAlive, runProcess } from "../shared/process.js";
import {
  assertDevices,
  assertReachable,
  cardDevices,
  DEFAULT_DEVICE_DIR,
  DEFAULT_SANDBOX_GID,
  DEFAULT_SANDBOX_PATH,
  DEFAULT_SANDBOX_UID,
  descendants,
  findBinary,
  findHugepageMounts,
  listProcs,
  mapCwd,
  type ProcInfo,
  procAlive,
  readProc,
  SANDBOX_HOME,
  SANDBOX_USER,
  SandboxError,
  sandboxEnv,
  sleep,
  until,
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
 * The bubblewrap backend: every command is one bwrap sandbox of its own, started with an empty
 * environment (so no process in it, its PID 1 included, holds a variable of the service), in
 * new PID, IPC, UTS, mount, user and cgroup namespaces and, unless network is allowed, a new
 * network namespace with nothing but its own loopback. Inside: the host's /usr (and /bin, /lib,
 * ... as the host has them) read-only, a short allowlist of /etc, a fresh /proc that shows only
 * the sandbox's processes, a minimal /dev plus the job's card nodes and hugepages, tmpfs /tmp,
 * /var/tmp and HOME (fresh for every command), and the workspace as the only writable host folder.
 *
 * When the service runs as root, bwrap is started through `setpriv` as an unprivileged uid
 * (default 65534), so the sandbox is an ordinary user's even outside its user namespace; the
 * workspace must then belong to that uid (prepareWorkspaceOwnership) and the folders above it
 * must be searchable by it. When the service runs as a normal user, bwrap runs as that user
 * and the sandbox's uid is only a name inside its user namespace.
 *
 * Killing: bwrap runs with --die-with-parent, so its sandbox gets SIGKILL when bwrap dies and
 * bwrap dies when the worker does (kill -9 included); since every sandbox has its own PID
 * namespace, the kernel kills everything in it when its init goes: setsid, double forks and
 * nohup do not escape. A timeout, a cancel or killAll first sends SIGTERM to the command's
 * processes (found from the host's /proc), then SIGKILLs the sandbox after the grace.
 */

export interface BwrapOptions {
  /** bwrap binary (default: `bwrap` on the service's PATH). */
  bwrapPath?: string;
  /** setpriv binary, used to drop root (default: `setpriv` on the service's PATH). */
  setprivPath?: string;
  /** The sandbox's uid and gid (default 65534:65534). */
  uid?: number;
  gid?: number;
  /**
   * Supplementary groups kept when dropping root, e.g. the group owning /dev/tenstorrent/*
   * on hosts where the nodes are not world-accessible (default: none).
   */
  groups?: number[];
  /** Where the workspace appears inside (default: its host path, so paths in output match). */
  mountPath?: string;
  /**
   * Network: false (default) gives the sandbox its own empty network namespace. true shares
   * the HOST's network namespace, loopback included: only allow it where nothing sensitive
   * listens on the host's loopback without authentication (Redis, the webhook port).
   */
  network?: boolean;
  /** Extra host paths bound read-only (a string binds at the same path). */
  readOnlyBinds?: Array<string | { source: string; target: string }>;
  /** Host folder of the card device nodes (default /dev/tenstorrent). */
  deviceDir?: string;
  /** Where the card nodes appear inside (default /dev/tenstorrent). */
  sandboxDeviceDir?: string;
  /** hugetlbfs mounts to bind (default: /dev/hugepages* found on the host). */
  hugepages?: string[];
  /** Bind /sys read-only (default: when the job has cards; the TT runtime reads PCI info there). */
  sys?: boolean;
  /** Entries of /etc bound read-only when they exist (default: ETC_ALLOWLIST). */
  etc?: readonly string[];
  /** Host paths hidden inside (a tmpfs over a folder, /dev/null over a file), e.g. a secret below /usr. */
  maskPaths?: string[];
  /** PATH inside (default: the usual system folders). */
  path?: string;
  /** LANG and LC_ALL inside (default C.UTF-8). */
  locale?: string;
  /** Constant variables every command gets, below the job's (spec.env, which wins). */
  extraEnv?: Record<string, string>;
  hostname?: string;
  /** Default SIGTERM to SIGKILL delay. */
  killGraceMs?: number;
  /** Where the generated passwd, group and hosts go, in one fixed folder per service uid (default: the OS temp folder). */
  stateDir?: string;
}

export type BwrapExecutorOptions = ExecutorSpec & BwrapOptions;

/**
 * /etc entries a job's tools need and that hold nothing of the service: the dynamic linker's
 * cache, Debian's alternatives links (awk, editor, ...), CA certificates, time zone, name
 * service switch, services and protocols, the OS release. Not bound: the host's passwd, group
 * and shadow (generated ones instead), gitconfig (GIT_CONFIG_NOSYSTEM too), environment,
 * profile, pip.conf and other tool configs that may hold credentials, resolv.conf and hosts
 * unless network is allowed.
 */
export const ETC_ALLOWLIST: readonly string[] = [
  "alternatives",
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  // Certificates only: /etc/ssl/private and /etc/pki/tls/private stay out.
  "ssl/certs",
  "ssl/openssl.cnf",
  "ca-certificates",
  "ca-certificates.conf",
  "pki/ca-trust",
  "pki/tls/certs",
  "pki/tls/cert.pem",
  "pki/tls/openssl.cnf",
  "crypto-policies",
  "localtime",
  "timezone",
  "nsswitch.conf",
  "host.conf",
  "services",
  "protocols",
  "mime.types",
  "os-release",
  "lsb-release",
  "debian_version",
  "magic",
];

/** The host's top-level system folders besides /usr: a symlink (merged /usr) or a real folder. */
const SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

interface Layout {
  bwrap: string;
  /** argv before bwrap's own: setpriv when dropping root. */
  prefix: string[];
  /** bwrap arguments shared by every command (before --chdir, the environment and argv). */
  base: string[];
}

function etcFiles(uid: number, gid: number, hostname: string) {
  const other = (n: number) => n !== 0 && n !== uid;
  return {
    passwd: [
      "root:x:0:0:root:/root:/usr/sbin/nologin",
      `${SANDBOX_USER}:x:${uid}:${gid}:autofix sandbox:${SANDBOX_HOME}:/bin/bash`,
      ...(other(65534) ? ["nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"] : []),
      "",
    ].join("\n"),
    group: [
      "root:x:0:",
      `${SANDBOX_USER}:x:${gid}:`,
      ...(gid !== 65534 && gid !== 0 ? ["nogroup:x:65534:"] : []),
      "",
    ].join("\n"),
    hosts: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
  };
}

/**
 * The generated passwd, group and hosts for a uid, gid and hostname: in one fixed folder per
 * service uid under `base` (`autofix-bwrap-etc-<euid>`), shared by every executor and process
 * and never growing, so nothing is left behind per job or per crash. The folder must be the
 * service's own and writable by nobody else (a planted one in /tmp is refused); files are
 * written under a fresh name, then renamed into place.
 */
async function generatedEtc(base: string, uid: number, gid: number, hostname: string): Promise<string> {
  const euid = process.geteuid?.() ?? 0;
  const top = path.join(base, `autofix-bwrap-etc-${euid}`);
  await mkdir(top, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  const st = await lstat(top);
  if (!st.isDirectory() || st.uid !== euid || (st.mode & 0o022) !== 0)
    throw new SandboxError(
      `${top} is not this service's own folder (owner ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`,
    );
  await chmod(top, 0o755);
  const d = path.join(top, `${uid}-${gid}-${hostname.replace(/[^A-Za-z0-9.-]/g, "_")}`);
  const files = etcFiles(uid, gid, hostname);
  const current = await readFile(path.join(d, "hosts"), "utf8").catch(() => null);
  if (current !== files.hosts) {
    const tmp = await mkdtemp(`${d}.tmp-`);
    for (const [name, text] of Object.entries(files)) {
      await writeFile(path.join(tmp, name), text, { mode: 0o644 });
    }
    await chmod(tmp, 0o755);
    await rename(tmp, d).catch(async () => {
      // Another executor made it first, with the same content.
      await rm(tmp, { recursive: true, force: true });
    });
  }
  return d;
}

/** bwrap arguments for the parts of the sandbox that do not change between commands. */
async function layout(o: BwrapExecutorOptions, workspace: string, mountPath: string): Promise<Layout> {
  const bwrap = await findBinary(o.bwrapPath ?? "bwrap");
  if (!bwrap) throw new SandboxError(`bubblewrap not found (${o.bwrapPath ?? "bwrap"} on PATH)`);
  const uid = o.uid ?? DEFAULT_SANDBOX_UID;
  const gid = o.gid ?? DEFAULT_SANDBOX_GID;
  const groups = o.groups ?? [];
  const asRoot = process.getuid?.() === 0;
  let prefix: string[] = [];
  if (asRoot) {
    if (uid === 0) throw new SandboxError("refusing to run the sandbox as uid 0");
    const setpriv = await findBinary(o.setprivPath ?? "setpriv");
    if (!setpriv) throw new SandboxError("setpriv (util-linux) not found: needed to drop root for bwrap");
    prefix = [
      setpriv,
      `--reuid=${uid}`,
      `--regid=${gid}`,
      groups.length > 0 ? `--groups=${groups.join(",")}` : "--clear-groups",
      "--no-new-privs",
    ];
  }
  // bwrap makes its binds with the sandbox's credentials: say clearly what it cannot reach.
  const sandboxUid = asRoot ? uid : (process.getuid?.() ?? uid);
  const sandboxGids = asRoot
    ? [gid, ...groups]
    : [process.getgid?.() ?? gid, ...(process.getgroups?.() ?? [])];
  const roBinds = (o.readOnlyBinds ?? []).map((b) =>
    typeof b === "string" ? { source: path.resolve(b), target: path.resolve(b) } : b,
  );
  // The build cache folders (ExecutorSpec.cacheMounts): read-write, like the workspace.
  const cacheBinds = (o.cacheMounts ?? []).map((m) => ({
    source: path.resolve(m.source),
    target: m.target ?? path.resolve(m.source),
  }));
  for (const b of cacheBinds)
    if (!path.isAbsolute(b.target) || b.target.split("/").includes(".."))
      throw new SandboxError(`cache mount target "${b.target}" must be an absolute path`);
  for (const p of [workspace, ...roBinds.map((b) => b.source), ...cacheBinds.map((b) => b.source)])
    await assertReachable(p, sandboxUid, sandboxGids);

  const hostname = o.hostname ?? "autofix-sandbox";
  const etcDir = await generatedEtc(o.stateDir ?? tmpdir(), uid, gid, hostname);

  const a: string[] = [
    "--unshare-all",
    ...(o.network ? ["--share-net"] : []),
    "--unshare-user",
    // No user namespaces inside: nothing to regain capabilities in, less kernel surface.
    "--disable-userns",
    "--uid",
    String(uid),
    "--gid",
    String(gid),
    "--die-with-parent",
    "--new-session",
    "--hostname",
    hostname,
    "--ro-bind",
    "/usr",
    "/usr",
  ];
  for (const dir of SYSTEM_DIRS) {
    try {
      const st = await lstat(dir);
      if (st.isSymbolicLink()) a.push("--symlink", await readlink(dir), dir);
      else if (st.isDirectory()) a.push("--ro-bind", dir, dir);
    } catch {
      // not on this host
    }
  }
  a.push("--perms", "0755", "--dir", "/etc");
  for (const name of o.etc ?? ETC_ALLOWLIST) {
    const p = path.posix.join("/etc", name);
    if (!p.startsWith("/etc/") || name.split("/").includes(".."))
      throw new SandboxError(`not an /etc entry: "${name}"`);
    a.push("--ro-bind-try", p, p);
  }
  a.push("--ro-bind", path.join(etcDir, "passwd"), "/etc/passwd");
  a.push("--ro-bind", path.join(etcDir, "group"), "/etc/group");
  if (o.network) {
    a.push("--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf");
    a.push("--ro-bind-try", "/etc/hosts", "/etc/hosts");
  } else {
    a.push("--ro-bind", path.join(etcDir, "hosts"), "/etc/hosts");
  }
  a.push("--proc", "/proc", "--dev", "/dev");
  const devices = cardDevices(
    o.cards,
    o.deviceDir ?? DEFAULT_DEVICE_DIR,
    o.sandboxDeviceDir ?? DEFAULT_DEVICE_DIR,
  );
  await assertDevices(devices);
  for (const d of devices) a.push("--dev-bind", d.host, d.sandbox);
  for (const h of o.hugepages ?? (await findHugepageMounts())) a.push("--bind", h, h);
  if (o.sys ?? o.cards.length > 0) a.push("--ro-bind", "/sys", "/sys");
  a.push("--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--perms", "0700", "--tmpfs", SANDBOX_HOME);
  a.push("--bind", workspace, mountPath);
  for (const b of roBinds) a.push("--ro-bind", b.source, b.target);
  for (const b of cacheBinds) a.push("--bind", b.source, b.target);
  for (const m of o.maskPaths ?? []) {
    const st = await lstat(m).catch(() => null);
    if (st?.isDirectory()) a.push("--tmpfs", m);
    else if (st) a.push("--ro-bind", "/dev/null", m);
  }
  // The sandbox's root is bwrap's own tmpfs: nothing outside the binds above may be written.
  a.push("--remount-ro", "/");
  return { bwrap, prefix, base: a };
}

export function createBwrapExecutor(o: BwrapExecutorOptions): JobExecutor {
  const workspace = path.resolve(o.workspace);
  const mountPath = o.mountPath ?? workspace;
  const jobEnv = { ...o.env };
  const grace = o.killGraceMs ?? 2000;
  let disposed = false;
  let setup: Promise<Layout> | undefined;
  /** Counts killAll calls: a command still being set up when one comes is cancelled, not started. */
  let epoch = 0;
  /** Running sandboxes: the bwrap's pid (its process group) and how to stop it. */
  const live = new Map<number, { stop: (graceMs: number) => Promise<void> }>();

  const getLayout = () => {
    setup ??= layout(o, workspace, mountPath);
    return setup;
  };

  const run = async (command: string | readonly string[], opts: ExecOptions = {}): Promise<CommandResult> => {
    if (disposed)
      throw new ExecutorDisposedError(
        `the job's executor was disposed of; not running ${String(command).slice(0, 80)}`,
      );
    const asked = epoch;
    const lay = await getLayout();
    if (disposed)
      throw new ExecutorDisposedError("the job's executor was disposed of while the command was set up");
    const cwd = mapCwd(workspace, mountPath, opts.cwd);
    const env = sandboxEnv({
      layers: [o.extraEnv, jobEnv, opts.env],
      path: o.path ?? DEFAULT_SANDBOX_PATH,
      locale: o.locale ?? "C.UTF-8",
    });
    const argv = typeof command === "string" ? ["bash", "-c", command] : [...command];
    const setenv = Object.entries(env).flatMap(([k, v]) => ["--setenv", k, v]);
    const full = [
      ...lay.prefix,
      lay.bwrap,
      ...lay.base,
      "--chdir",
      cwd,
      "--clearenv",
      // Names the service process that owns the sandbox, so a restarted worker finds what a
      // killed one left (removeStaleSandboxes). A pid, nothing secret.
      "--setenv",
      SANDBOX_OWNER_ENV,
      String(process.pid),
      ...setenv,
      "--",
      ...argv,
    ];

    if (opts.signal?.aborted) return runProcess(full, { env: {}, signal: opts.signal });
    if (epoch !== asked) return runProcess(full, { env: {}, signal: AbortSignal.abort() });
    const graceMs = opts.killGraceMs ?? grace;
    let timedOut = false;
    let cancelled = false;
    let pid: number | undefined;
    let stopping: Promise<void> | undefined;
    let init: Promise<ProcInfo | undefined> | undefined;
    let ended = false;
    const stop = (ms: number) => {
      if (pid === undefined) return Promise.resolve();
      stopping ??= stopSandbox(pid, ms);
      return stopping;
    };
    const onAbort = () => {
      cancelled = true;
      void stop(graceMs);
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timer =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            void stop(graceMs);
          }, opts.timeoutMs)
        : undefined;
    try {
      const r = await runProcess(full, {
        cwd: "/",
        // bwrap, and through it the sandbox's PID 1, start with nothing of the service's.
        env: {},
        // The sandbox is gone when bwrap is: nothing of the command is left in its group.
        killGraceMs: 200,
        ...(opts.input !== undefined ? { input: opts.input } : {}),
        ...(opts.headBytes !== undefined ? { headBytes: opts.headBytes } : {}),
        ...(opts.tailBytes !== undefined ? { tailBytes: opts.tailBytes } : {}),
        onSpawn: (p) => {
          pid = p;
          live.set(p, { stop });
          init = findInit(p, () => ended);
        },
      });
      ended = true;
      if (stopping) await stopping;
      // bwrap reports the command's exit status as soon as its init has it, before the kernel
      // has torn the PID namespace down: return once the init, and so everything, is gone.
      const sandboxInit = await init;
      if (sandboxInit) await until(async () => !(await procAlive(sandboxInit)), 5000, 2);
      return { ...r, timedOut, cancelled };
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (pid !== undefined) live.delete(pid);
    }
  };

  const killAll = async () => {
    epoch++;
    await Promise.all([...live.values()].map((s) => s.stop(Math.min(grace, 500))));
  };

  return assembleExecutor({
    kind: "bwrap",
    workspace,
    jobEnv,
    run,
    killAll,
    markDisposed: () => {
      disposed = true;
    },
  });
}

/**
 * The sandbox's init (bwrap's one child, PID 1 of the new namespace), found while bwrap runs:
 * from /proc/<pid>/task/<pid>/children, or a /proc scan where that file cannot be read.
 */
async function findInit(bwrapPid: number, ended: () => boolean): Promise<ProcInfo | undefined> {
  const file = `/proc/${bwrapPid}/task/${bwrapPid}/children`;
  let useScan = false;
  const deadline = Date.now() + 10_000;
  while (!ended() && Date.now() < deadline) {
    let child: ProcInfo | null | undefined;
    if (!useScan) {
      try {
        const first = (await readFile(file, "utf8")).trim().split(/\s+/)[0];
        child = first ? await readProc(first) : undefined;
      } catch (err) {
        if ((await readProc(bwrapPid)) === null) return undefined;
        // Alive but unreadable (no CONFIG_PROC_CHILDREN, or not ours to read): scan instead.
        useScan = Boolean(err);
      }
    }
    if (useScan) child = (await listProcs()).find((p) => p.ppid === bwrapPid);
    if (child && child.ppid === bwrapPid) return child;
    await sleep(useScan ? 5 : 1);
  }
  return undefined;
}

/**
 * Stop one sandbox: SIGTERM to every process of the command (the descendants of the
 * sandbox's init, seen from the host), SIGKILL to bwrap once they are gone or the grace is
 * over, which takes the whole PID namespace with it; returns when its init is gone.
 */
async function stopSandbox(bwrapPid: number, graceMs: number): Promise<void> {
  const procs = await listProcs();
  const outer = procs.find((p) => p.pid === bwrapPid);
  if (!outer) return;
  const init = procs.find((p) => p.ppid === bwrapPid);
  const inside: ProcInfo[] = init ? descendants(procs, init.pid) : [];
  for (const p of inside) {
    try {
      process.kill(p.pid, "SIGTERM");
    } catch {
      // gone already
    }
  }
  if (inside.length > 0) {
    await until(async () => !(await procAlive(init!)), graceMs, 25);
  }
  // Only while it is the same process: a reaped bwrap's pid may belong to someone else by now.
  if (await procAlive(outer)) killGroup(bwrapPid, "SIGKILL");
  if (init) await until(async () => !(await procAlive(init)), 5000, 10);
}

/** The variable every bwrap sandbox is started with: the pid of the service that made it. */
export const SANDBOX_OWNER_ENV = "AUTOFIX_SANDBOX_OWNER";

/**
 * Kill the bubblewrap sandboxes a dead service process left. bwrap's --die-with-parent takes a
 * sandbox down with the worker almost always, but its init can miss the signal when the worker
 * dies at the wrong moment (seen about once in six SIGKILLs here); a restarted worker then
 * finds the orphan by its owner variable on the command line and kills it, and with its init
 * the whole PID namespace goes. Returns the pids killed.
 */
export async function removeStaleSandboxes(isAlive: (pid: number) => boolean = pidAlive): Promise<number[]> {
  const killed: number[] = [];
  for (const name of (await readdir("/proc")).filter((n) => /^\d+$/.test(n))) {
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${name}/cmdline`, "utf8")).split("\0");
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? "") !== "bwrap") continue;
    const i = argv.findIndex((a, k) => a === "--setenv" && argv[k + 1] === SANDBOX_OWNER_ENV);
    const owner = i >= 0 ? Number(argv[i + 2]) : Number.NaN;
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || isAlive(owner)) continue;
    try {
      process.kill(Number(name), "SIGKILL");
      killed.push(Number(name));
    } catch {
      // gone already
    }
  }
  return killed;
}

/** The factory the worker uses for bubblewrap sandboxes. */
export function bwrapExecutorFactory(options: BwrapOptions = {}): ExecutorFactory {
  return async (spec) => createBwrapExecutor({ ...spec, ...options });
}

/**
 * Is bubblewrap usable here? Not only installed: a minimal sandbox with the namespaces the
 * executor asks for is started (through setpriv as the sandbox uid when root), which fails
 * where unprivileged user namespaces are off (kernel.unprivileged_userns_clone=0,
 * user.max_user_namespaces=0, Ubuntu's AppArmor restriction) or a container forbids them.
 * For diagnostics, the sandbox choice and test skips.
 */
export async function bwrapAvailable(
  bwrapPath = "bwrap",
  o: { uid?: number; gid?: number; setprivPath?: string } = {},
): Promise<{ ok: boolean; detail: string }> {
  const bin = await findBinary(bwrapPath);
  if (!bin) return { ok: false, detail: `${bwrapPath} not found on PATH` };
  const version = await runProcess([bin, "--version"], { env: {}, timeoutMs: 10_000 });
  if (version.exitCode !== 0) return { ok: false, detail: `${bin} --version: ${version.output.trim()}` };
  let prefix: string[] = [];
  if (process.getuid?.() === 0) {
    const setpriv = await findBinary(o.setprivPath ?? "setpriv");
    if (!setpriv)
      return { ok: false, detail: "setpriv (util-linux) not found: needed to drop root for bwrap" };
    const uid = o.uid ?? DEFAULT_SANDBOX_UID;
    const gid = o.gid ?? DEFAULT_SANDBOX_GID;
    prefix = [setpriv, `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--no-new-privs"];
  }
  const links: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    const st = await lstat(dir).catch(() => null);
    if (st?.isSymbolicLink()) links.push("--symlink", await readlink(dir), dir);
    else if (st?.isDirectory()) links.push("--ro-bind", dir, dir);
  }
  const probe = [
    ...prefix,
    bin,
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--ro-bind",
    "/usr",
    "/usr",
    ...links,
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--",
    "/usr/bin/true",
  ];
  const r = await runProcess(probe, { env: {}, cwd: "/", timeoutMs: 20_000 });
  const v = version.output.trim();
  if (r.exitCode !== 0)
    return {
      ok: false,
      detail: `${bin} (${v}) cannot make a sandbox here: ${r.output.trim().slice(-300) || `exit ${r.exitCode}`}`,
    };
  return { ok: true, detail: `${bin}: ${v}` };
}
