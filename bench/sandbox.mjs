#!/usr/bin/env node
// Sandbox cost per command: `true` and `git status` in a tiny repository, run N times through
// the host, bwrap and container (podman) executors, interleaved round-robin so drift hits all
// three alike; p50/p95 and the overhead against the host, side by side. Also what a sandbox
// costs once: the container's start (its first command) and killAll plus the next command.
//
//   npm run bench:sandbox [-- --runs 40 --engine podman --no-container --no-bwrap]
//
// No registry is assumed: the container image is made from this host's own binaries.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBwrapExecutor } from "../dist/src/sandbox/bwrap.js";
import { findBinary, prepareWorkspaceOwnership } from "../dist/src/sandbox/common.js";
import { createContainerExecutor } from "../dist/src/sandbox/container.js";
import { createHostExecutor } from "../dist/src/sandbox/host.js";
import { buildHostImage, removeHostImage } from "../dist/src/sandbox/host-image.js";
import { fmtMs, median, reportJson } from "./lib/report.mjs";
import { percentile, printTable } from "./lib/table.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const RUNS = Number(opt("runs", "40"));
const ENGINE = { binary: opt("engine", "podman") };
const now = () => performance.now();

const root = mkdtempSync(join(tmpdir(), "autofix-bench-sandbox-"));
chmodSync(root, 0o711);
const ws = join(root, "ws");
mkdirSync(ws);
const gitEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
const git = (...a) => execFileSync("git", a, { cwd: ws, env: gitEnv, stdio: "pipe" });
git("init", "-q", "-b", "main");
for (let i = 0; i < 20; i++) writeFileSync(join(ws, `f${i}.txt`), `file ${i}\n`);
git("add", ".");
git("-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "tiny");
writeFileSync(join(ws, "f0.txt"), "changed\n");
const asRoot = process.getuid?.() === 0;
if (asRoot) await prepareWorkspaceOwnership(ws, 65534, 65534);

// The same git settings for every backend: root's host git would refuse a workspace owned by 65534.
const cmdEnv = { GIT_CONFIG_COUNT: "1", GIT_CONFIG_KEY_0: "safe.directory", GIT_CONFIG_VALUE_0: "*" };
const spec = { workspace: ws, env: { TT_VISIBLE_DEVICES: "0" }, cards: [], jobId: "bench" };
const COMMANDS = [
  { name: "true", argv: ["true"] },
  { name: "git status", argv: ["git", "status", "--porcelain"] },
];

const backends = [{ name: "host", make: () => createHostExecutor(spec) }];
const notes = [];
if (!args.includes("--no-bwrap")) {
  if (await findBinary("bwrap")) backends.push({ name: "bwrap", make: () => createBwrapExecutor(spec) });
  else notes.push("bwrap: not installed");
}
let image;
if (!args.includes("--no-container")) {
  if (await findBinary(ENGINE.binary)) {
    image = `localhost/autofix-bench-sandbox:${process.pid}`;
    const t = now();
    await buildHostImage({
      engine: ENGINE,
      tag: image,
      binaries: ["bash", "sh", "sleep", "true", "git"],
      folders: ["/usr/lib/git-core", "/usr/share/git-core"],
    });
    notes.push(`container image from host binaries built and imported in ${fmtMs(now() - t)}`);
    backends.push({
      name: "container",
      make: () =>
        createContainerExecutor({ ...spec, image, engine: ENGINE, workerName: `bench-${process.pid}` }),
    });
  } else notes.push(`container: ${ENGINE.binary} not installed`);
}

const once = {};
try {
  for (const b of backends) {
    b.exec = b.make();
    // First command: the container's start; bwrap's first layout.
    const t = now();
    const r = await b.exec.run(["true"]);
    once[`${b.name} first command`] = now() - t;
    if (r.exitCode !== 0) throw new Error(`${b.name}: true failed: ${r.output}`);
    for (const c of COMMANDS) {
      const w = await b.exec.run(c.argv, { env: cmdEnv });
      if (w.exitCode !== 0) throw new Error(`${b.name}: ${c.name} failed: ${w.output}`);
    }
    b.samples = Object.fromEntries(COMMANDS.map((c) => [c.name, []]));
  }
  for (let i = 0; i < RUNS; i++) {
    for (const c of COMMANDS) {
      for (const b of backends) {
        const t = now();
        const r = await b.exec.run(c.argv, { env: cmdEnv });
        b.samples[c.name].push(now() - t);
        if (r.exitCode !== 0) throw new Error(`${b.name}: ${c.name} failed: ${r.output}`);
      }
    }
  }
  // killAll and the next command (the container is recreated, a bwrap sandbox is per command anyway).
  for (const b of backends) {
    const xs = [];
    for (let i = 0; i < 5; i++) {
      await b.exec.run(["true"]);
      const t = now();
      await b.exec.killAll();
      await b.exec.run(["true"]);
      xs.push(now() - t);
    }
    once[`${b.name} killAll + next command (median of 5)`] = median(xs);
  }
} finally {
  for (const b of backends) await b.exec?.dispose().catch(() => {});
  if (image) await removeHostImage(ENGINE, image);
  rmSync(root, { recursive: true, force: true });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: median(s), p95: percentile(s, 95) };
};
const host = backends[0];
const rows = [];
const figures = [];
const raw = {};
for (const c of COMMANDS) {
  const h = stats(host.samples[c.name]);
  for (const b of backends) {
    const s = stats(b.samples[c.name]);
    raw[`${b.name}/${c.name}`] = { p50Ms: s.p50, p95Ms: s.p95, runs: RUNS };
    const over = b === host ? "" : `+${fmtMs(s.p50 - h.p50)} (${(s.p50 / h.p50).toFixed(1)}x)`;
    rows.push([c.name, b.name, fmtMs(s.p50), fmtMs(s.p95), over]);
    if (b !== host)
      figures.push({
        figure: `${b.name}: ${c.name} per command p50 (p95)`,
        value: `${fmtMs(s.p50)} (${fmtMs(s.p95)})`,
        baseline: `host ${fmtMs(h.p50)} (${fmtMs(h.p95)})`,
        goal: null,
        met: null,
      });
  }
}
console.log(
  `Sandbox per-command cost, ${RUNS} runs each, interleaved${asRoot ? " (as root: bwrap via setpriv as 65534)" : ""}`,
);
printTable(["command", "backend", "p50", "p95", "overhead p50 vs host"], rows);
console.log("");
printTable(
  ["once", "time"],
  Object.entries(once).map(([k, v]) => [k, fmtMs(v)]),
);
for (const n of notes) console.log(`note: ${n}`);
for (const [k, v] of Object.entries(once)) {
  if (k.startsWith("host")) continue;
  figures.push({ figure: k, value: fmtMs(v), baseline: null, goal: null, met: null });
}
reportJson("sandbox", figures, { runs: RUNS, raw, onceMs: once, notes });
