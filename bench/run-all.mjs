#!/usr/bin/env node
// Runs every benchmark as a child process, collects the BENCH_JSON line each one prints last,
// and prints one summary table (bench, figure, value, baseline, goal, met?).
//
//   npm run bench                      # build, run all, print
//   npm run bench -- --write           # also write bench/RESULTS.md (machine, every table)
//   npm run bench -- --only agent,workspace --note "text for RESULTS.md"
//
// The benches import the build (dist/), so build first (the npm script does).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BENCH_JSON } from "./lib/report.mjs";
import { printTable } from "./lib/table.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const WRITE = args.includes("--write");
const NOTE = opt("note", "");

/** Every bench with the arguments used here (webhooks: its short defaults, 5 s per rate). */
const BENCHES = [
  {
    name: "triage",
    file: "triage.mjs",
    args: [],
    what: "streaming log triage, 10 MB and 100 MB, vs grep -E",
  },
  {
    name: "webhooks",
    file: "webhooks.mjs",
    args: [],
    what: "webhook ingest over HTTP, open loop, vs a bare Probot app",
  },
  {
    name: "workspace",
    file: "workspace.mjs",
    args: [],
    what: "2nd-job workspace via WorkspaceManager vs git clone + checkout",
  },
  {
    name: "workspace-long",
    file: "workspace.mjs",
    args: ["--commits", "20000", "--reps", "3"],
    what: "the same with a 10x longer history (20,000 commits)",
  },
  {
    name: "agent",
    file: "agent.mjs",
    args: [],
    what: "agent harness per turn vs bare SDK; cached prompt prefix",
  },
  {
    name: "sandbox",
    file: "sandbox.mjs",
    args: [],
    what: "per-command cost of the bubblewrap and container sandboxes vs a plain host command",
  },
  {
    name: "build-env",
    file: "build-env.mjs",
    args: [],
    what: "claim to first model turn on a C++ project with submodules: cold vs warm cache vs artifact",
  },
];
const only = opt("only", "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const selected = only.length ? BENCHES.filter((b) => only.includes(b.name)) : BENCHES;

function run(bench) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(here, bench.file), ...bench.args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
      process.stdout.write(c);
    });
    child.on("close", (code) => {
      const seconds = (performance.now() - t0) / 1000;
      const line = out.split("\n").find((l) => l.startsWith(`${BENCH_JSON} `));
      let json = null;
      try {
        json = line ? JSON.parse(line.slice(BENCH_JSON.length + 1)) : null;
      } catch {
        json = null;
      }
      const tables = out
        .split("\n")
        .filter((l) => !l.startsWith(BENCH_JSON))
        .join("\n")
        .trim();
      resolve({ bench, code, seconds, json, tables });
    });
  });
}

function sh(cmd, a) {
  try {
    return execFileSync(cmd, a, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "";
  }
}

async function redisVersion() {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let info = sh("redis-cli", ["-u", url, "INFO", "server"]);
  if (!info) {
    try {
      const { Redis } = await import("ioredis");
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      info = await r.info("server");
      r.disconnect();
    } catch {
      info = "";
    }
  }
  return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
}

function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    model = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? model;
  } catch {}
  return {
    cpu: model,
    cores: cpus().length,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    git: sh("git", ["--version"]).replace(/^git version /, ""),
  };
}

const startedAt = new Date();
const loadBefore = loadavg();
const results = [];
for (const b of selected) {
  console.error(`\n=== ${b.name}: ${b.what} ===`);
  results.push(await run(b));
}
const loadAfter = loadavg();

const rows = [];
for (const r of results) {
  if (r.code !== 0 || !r.json) {
    rows.push([r.bench.name, "(the bench failed)", `exit ${r.code}`, "", "", "no"]);
    continue;
  }
  for (const f of r.json.figures) {
    const met = f.met === null || f.met === undefined ? "-" : f.met ? "yes" : "no";
    rows.push([
      r.bench.name,
      f.figure,
      f.note ? `${f.value} (${f.note})` : f.value,
      f.baseline ?? "-",
      f.goal ?? "-",
      met,
    ]);
  }
}
const header = ["bench", "figure", "value", "baseline", "goal", "met?"];
console.log("\n=== summary ===\n");
printTable(header, rows);
const la = (l) => l.map((x) => x.toFixed(2)).join(" ");
console.log(`\nload average before ${la(loadBefore)}, after ${la(loadAfter)}`);

if (WRITE) {
  const m = machine();
  const redis = await redisVersion();
  const md = [];
  const cell = (s) => String(s).replace(/\|/g, "\\|");
  md.push("# Benchmark results", "");
  md.push(
    "Written by `npm run bench -- --write` (bench/run-all.mjs). Each bench measures its baseline in",
    "the same run, side by side; the tables below are the benches' own output.",
    "",
  );
  md.push("## Machine", "");
  md.push("| | |", "| --- | --- |");
  md.push(`| CPU | ${cell(m.cpu)} |`);
  md.push(`| cores | ${m.cores} |`);
  md.push(`| memory | ${m.memory} |`);
  md.push(`| kernel | ${m.kernel} |`);
  md.push(`| node | ${m.node} |`);
  md.push(`| git | ${m.git} |`);
  md.push(`| redis | ${redis} |`);
  md.push(`| date | ${startedAt.toISOString()} |`);
  md.push(`| load average (1/5/15 min) before / after | ${la(loadBefore)} / ${la(loadAfter)} |`);
  md.push("");
  md.push("## How to read it", "");
  md.push(
    "- Everything runs on this one machine: load generators, fake servers, Redis and the code under test share its cores, so absolute figures are lower bounds for a dedicated host. Other jobs may run at the same time; the load averages above show how busy it was.",
    "- webhooks: open loop at fixed rates; latency counts from the scheduled send time, so a server that falls behind is charged for the queueing. The fake GitHub answers at once.",
    "- workspace: the repository is generated with `git fast-import` and repacked; the remote is `file://` on the same machine (the cheapest possible clone: no network). It runs on tmpfs (/dev/shm): on this VM's ext4 disk, plain checkouts of 30,000 files slowed from 0.4 s to 8 s, almost all kernel time, over a few consecutive runs, which measures the disk, not git (`--dir` measures a disk).",
    "- agent: the fake Messages API answers at once; `time inside the fake server` is subtracted. The cached share is bytes of the request JSON; an estimate of tokens as characters / 4 gives the same ratio.",
    "",
  );
  if (NOTE) md.push(NOTE, "");
  md.push("## Summary", "");
  md.push(`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`);
  for (const r of rows) md.push(`| ${r.map(cell).join(" | ")} |`);
  md.push("");
  for (const r of results) {
    md.push(`## ${r.bench.name}`, "");
    md.push(
      `${r.bench.what}. \`node bench/${r.bench.file}${r.bench.args.length ? ` ${r.bench.args.join(" ")}` : ""}\`, ${r.seconds.toFixed(0)} s, exit ${r.code}.`,
      "",
    );
    md.push("```", r.tables, "```", "");
  }
  writeFileSync(join(here, "RESULTS.md"), `${md.join("\n")}\n`);
  console.error(`wrote ${join(here, "RESULTS.md")}`);
}
process.exit(results.every((r) => r.code === 0 && r.json) ? 0 : 1);
