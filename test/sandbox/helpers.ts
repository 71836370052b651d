import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findBinary, prepareWorkspaceOwnership, until } from "../../src/sandbox/common.js";

export { until };

export const SANDBOX_UID = 65534;
export const SANDBOX_GID = 65534;
export const asRoot = process.getuid?.() === 0;
/** The uid commands show inside: the sandbox uid (in its user namespace when not root). */
export const expectedUid = SANDBOX_UID;

/**
 * A backend's tests run only where its binary is; in CI (CI=true) a missing binary is a
 * failure, since .ci/run installs them.
 */
export async function backendBinary(name: string): Promise<{ path: string | null; skip: string | false }> {
  const p = await findBinary(name);
  if (p) return { path: p, skip: false };
  if (process.env.CI === "true" || process.env.CI === "1")
    throw new Error(`${name} is not installed; .ci/run installs it (apt-get install ${name})`);
  return { path: null, skip: `${name} is not installed on this machine: its sandbox tests are skipped` };
}

/** Secrets planted in this process's environment: no sandboxed command may see them. */
export function plantSecrets(): { secret: string; token: string; restore: () => void } {
  const secret = `s3cr3t-${randomBytes(8).toString("hex")}`;
  const token = `ghs_${randomBytes(18).toString("hex")}`;
  const before = { a: process.env.AUTOFIX_TEST_SECRET, b: process.env.GH_TOKEN };
  process.env.AUTOFIX_TEST_SECRET = secret;
  process.env.GH_TOKEN = token;
  return {
    secret,
    token,
    restore() {
      if (before.a === undefined) delete process.env.AUTOFIX_TEST_SECRET;
      else process.env.AUTOFIX_TEST_SECRET = before.a;
      if (before.b === undefined) delete process.env.GH_TOKEN;
      else process.env.GH_TOKEN = before.b;
    },
  };
}

export interface Fixture {
  root: string;
  /** The job's workspace, given to the sandbox uid. */
  workspace: string;
  /** Another job's workspace next to it, also the sandbox uid's. */
  otherWorkspace: string;
  /** World-readable secrets outside any workspace: only the sandbox's isolation hides them. */
  secretsDir: string;
  envFile: string;
  keyFile: string;
  /** A card device folder with nodes 0 and 1 (character devices like /dev/null). */
  deviceDir: string;
  cleanup: () => Promise<void>;
}

export async function makeFixture(secret: string): Promise<Fixture> {
  const root = await mkdtemp(join(tmpdir(), "autofix-sandbox-test-"));
  // Searchable, not listable: how a root service's work folder must be for its sandboxes.
  await chmod(root, 0o711);
  const workspace = join(root, "ws");
  const otherWorkspace = join(root, "other-ws");
  const secretsDir = join(root, "service");
  const deviceDir = join(root, "dev-tenstorrent");
  for (const d of [workspace, otherWorkspace, secretsDir, deviceDir]) await mkdir(d);
  await writeFile(join(workspace, "README"), "the job's own file\n");
  await mkdir(join(workspace, "sub"));
  await writeFile(join(otherWorkspace, "theirs.txt"), `other job ${secret}\n`);
  const envFile = join(secretsDir, ".env");
  const keyFile = join(secretsDir, "app.pem");
  await writeFile(envFile, `AUTOFIX_TEST_SECRET=${secret}\n`, { mode: 0o644 });
  await writeFile(keyFile, `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`, {
    mode: 0o644,
  });
  await chmod(secretsDir, 0o755);
  await chmod(deviceDir, 0o755);
  if (asRoot) {
    for (const card of ["0", "1"]) {
      execFileSync("mknod", ["-m", "0666", join(deviceDir, card), "c", "1", "3"]);
    }
    await prepareWorkspaceOwnership(workspace, SANDBOX_UID, SANDBOX_GID);
    await prepareWorkspaceOwnership(otherWorkspace, SANDBOX_UID, SANDBOX_GID);
  } else {
    for (const card of ["0", "1"]) await writeFile(join(deviceDir, card), "");
  }
  return {
    root,
    workspace,
    otherWorkspace,
    secretsDir,
    envFile,
    keyFile,
    deviceDir,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** A `sleep` argument no other process has: find the sandbox's sleeps from the host. */
export function marker(): string {
  return `${1000 + Math.floor(Math.random() * 8000)}.${randomBytes(4).readUInt32BE(0)}`;
}

/** Host pids of live `sleep <marker>` processes (argv exactly that: bwrap's own argv does not count). */
export async function markerPids(m: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = (await readFile(`/proc/${name}/cmdline`, "utf8")).split("\0");
      if (!/(^|\/)sleep$/.test(argv[0] ?? "") || argv[1] !== m) continue;
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2)[0];
      if (state !== "Z" && state !== "X") out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

export const markerGone = async (m: string, ms = 10_000) =>
  until(async () => (await markerPids(m)).length === 0, ms, 25);
export const markerCount = async (m: string, n: number, ms = 10_000) =>
  until(async () => (await markerPids(m)).length >= n, ms, 25);

/** A TCP listener on the host's loopback (or all interfaces), as Redis and the webhook port are; counts connections. */
export async function loopbackListener(host = "127.0.0.1"): Promise<{
  port: number;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let n = 0;
  const server: Server = createServer((s) => {
    n++;
    s.on("error", () => {});
    s.end("hello\n");
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connections: () => n,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * Compile src/sandbox (and what it imports: no packages) to JavaScript in a fresh temp folder,
 * for child processes of the tests, without type-checking (the typecheck script's job). A
 * folder per call: test files run in parallel.
 */
export async function buildSandboxDist(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "autofix-sandbox-dist-"));
  const config = join(dir, "tsconfig.json");
  await writeFile(
    config,
    JSON.stringify({
      extends: join(ROOT, "tsconfig.json"),
      compilerOptions: {
        outDir: dir,
        rootDir: ROOT,
        noEmit: false,
        sourceMap: false,
        typeRoots: [join(ROOT, "node_modules/@types")],
      },
      files: [join(ROOT, "src/sandbox/bwrap.ts"), join(ROOT, "src/sandbox/container.ts")],
      include: [],
    }),
  );
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/lib/tsc.js"), "-p", config, "--noCheck"],
    {
      cwd: ROOT,
      stdio: "pipe",
    },
  );
  // Outside the package: mark the output as ES modules.
  await writeFile(join(dir, "package.json"), '{ "type": "module" }\n');
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** This host's first non-loopback IPv4 address, if it has one. */
export function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}
