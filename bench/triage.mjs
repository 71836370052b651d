#!/usr/bin/env node
/**
 * Streaming triage benchmark: generates GitHub Actions logs of 10 MB and 100 MB (and 1 GB
 * with --big), triages each in its own child process (so peak RSS figures do not mix) and
 * compares with `grep -E` over the same file for the same patterns.
 *
 *   npm run bench:triage            # 10 MB, 100 MB
 *   npm run bench:triage -- --big   # adds 1 GB
 *   node bench/triage.mjs --sizes 10,50 --keep
 *
 * Runs against the build (dist/), so build first (the npm script does).
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { reportJson } from "./lib/report.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const DIST = join(here, "../dist/src/logs/index.js");

/** The patterns the triage looks for, as one ERE, for the grep baseline. */
const GREP_PATTERN = [
  "FAILED",
  "ERROR",
  "Traceback",
  "TT_THROW",
  "TT_FATAL",
  "TIMEOUT: device timeout",
  "run_mailbox",
  "Segmentation fault",
  "SIGSEGV",
  "Timeout >",
  "timed out",
  "exceeded the maximum execution time",
  "Killed",
  "MemoryError",
  "bad_alloc",
  "terminate called",
  "shutdown signal",
  "lost communication",
  "fatal: could not read",
  "No space left on device",
  "Artifact not found",
  "AssertionError",
  "##\\[error\\]",
].join("|");

// ---------------------------------------------------------------------------------------------
// Child mode: triage one file and report figures as JSON.

if (process.argv[2] === "--child") {
  const file = process.argv[3];
  const { triageStream } = await import(DIST);
  const start = process.hrtime.bigint();
  const t = await triageStream(createReadStream(file, { highWaterMark: 256 * 1024 }));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const ru = process.resourceUsage();
  process.stdout.write(
    JSON.stringify({
      ms,
      maxRssKb: ru.maxRSS,
      lines: t.stats.lines,
      errorClass: t.errorClass,
      fingerprint: t.fingerprint,
      failingTests: t.failingTests.length + t.failingTestsOmitted,
      excerptBytes: Buffer.byteLength(t.excerpt),
    }),
  );
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent mode.

const args = process.argv.slice(2);
const big = args.includes("--big");
const keep = args.includes("--keep");
const sizesArg = args.includes("--sizes") ? args[args.indexOf("--sizes") + 1] : null;
const sizesMb = sizesArg ? sizesArg.split(",").map(Number) : big ? [10, 100, 1024] : [10, 100];

if (!existsSync(DIST)) {
  console.error(`bench: ${DIST} is missing; run "npm run build" first (or "npm run bench:triage")`);
  process.exit(2);
}

/** Write a log in GitHub's format: timestamps, step groups, pytest and TT logger output, failures. */
function generate(file, bytes) {
  const fd = openSync(file, "w");
  let t = Date.parse("2024-05-01T12:00:00Z");
  let written = 0;
  let n = 0;
  let buf = [];
  let bufLen = 0;
  const line = (s) => {
    t += 3;
    const l = `${new Date(t).toISOString().slice(0, -1)}${String(n++ % 10000).padStart(4, "0")}Z ${s}\n`;
    buf.push(l);
    bufLen += l.length;
    if (bufLen > 1 << 20) flush();
  };
  const flush = () => {
    const chunk = buf.join("");
    writeSync(fd, chunk);
    written += chunk.length;
    buf = [];
    bufLen = 0;
  };
  line("\uFEFF##[group]Run pytest tests/ttnn/unit_tests -v");
  line("pytest tests/ttnn/unit_tests -v");
  line("shell: /usr/bin/bash -e {0}");
  line("##[endgroup]");
  line("============================= test session starts ==============================");
  let i = 0;
  while (written + bufLen < bytes - 4096) {
    i++;
    const r = i % 1000;
    if (r === 0) {
      line("=================================== FAILURES ===================================");
      line(`_____________________________ test_matmul[${i}-128] ______________________________`);
      line(`device = <ttnn._ttnn.device.Device object at 0x7f3a${(i * 7919).toString(16).padStart(8, "0")}>`);
      line(
        `E       RuntimeError: TT_THROW @ /work/tt_metal/impl/dispatch/system_memory_manager.cpp:${600 + (i % 50)}: tt::exception`,
      );
      line("E       info:");
      line("E       TIMEOUT: device timeout, potential hang detected, the device is unrecoverable");
      line(
        `FAILED tests/ttnn/unit_tests/operations/test_matmul.py::test_matmul[${i}-128] - RuntimeError: TT_THROW`,
      );
    } else if (r % 97 === 0) {
      line(
        `2024-05-01 12:00:${String(i % 60).padStart(2, "0")}.123 | WARNING  | ttnn.decorators:wrapper:${i % 900} - op fallback to host for shape (${i % 64}, 128)`,
      );
    } else if (r % 3 === 0) {
      line(
        `                 Metal | INFO     | Program cache hit for kernel matmul_${i % 4096} on device 0 (${i % 97} us)`,
      );
    } else {
      line(
        `tests/ttnn/unit_tests/operations/test_eltwise.py::test_add[${i % 512}-bfloat16-${i % 7}] PASSED                   [ ${i % 100}%]`,
      );
    }
  }
  line("=========================== short test summary info ============================");
  line(
    "FAILED tests/ttnn/unit_tests/operations/test_matmul.py::test_matmul[1000-128] - RuntimeError: TT_THROW",
  );
  line("##[error]Process completed with exit code 1.");
  flush();
  closeSync(fd);
  return { lines: n };
}

function grepBaseline(file) {
  const hasTime = existsSync("/usr/bin/time");
  const cmd = hasTime ? "/usr/bin/time" : "grep";
  const argv = hasTime
    ? ["-f", "%M", "grep", "-E", "-c", GREP_PATTERN, file]
    : ["-E", "-c", GREP_PATTERN, file];
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const maxRssKb = hasTime ? Number(r.stderr.trim().split("\n").pop()) : Number.NaN;
  return { ms, maxRssKb, matches: Number(r.stdout.trim()) };
}

function triageChild(file) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--child", file], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`triage child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const dir = mkdtempSync(join(tmpdir(), "autofix-bench-"));
const rows = [];
try {
  for (const mb of sizesMb) {
    const file = join(dir, `job-${mb}mb.log`);
    process.stderr.write(`generating ${mb} MB ... `);
    generate(file, mb * 1024 * 1024);
    const size = statSync(file).size;
    process.stderr.write("triage ... ");
    const tr = triageChild(file);
    process.stderr.write("grep ...\n");
    const gr = grepBaseline(file);
    const mbs = (ms) => (size / 1024 / 1024 / (ms / 1000)).toFixed(0);
    rows.push({
      size: `${(size / 1024 / 1024).toFixed(0)} MB`,
      lines: tr.lines.toLocaleString("en-US"),
      "triage MB/s": mbs(tr.ms),
      "triage peak RSS": `${(tr.maxRssKb / 1024).toFixed(0)} MB`,
      "grep -E MB/s": mbs(gr.ms),
      "grep peak RSS": Number.isNaN(gr.maxRssKb) ? "n/a" : `${(gr.maxRssKb / 1024).toFixed(0)} MB`,
      "grep lines": gr.matches.toLocaleString("en-US"),
      class: tr.errorClass,
      tests: String(tr.failingTests),
      fingerprint: tr.fingerprint,
    });
    if (!keep) rmSync(file);
  }
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`logs kept in ${dir}`);
}

// A plain text table.
const cols = Object.keys(rows[0] ?? {});
const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
const fmt = (vals) => `| ${vals.map((v, i) => String(v).padEnd(width[i])).join(" | ")} |`;
console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
console.log(fmt(cols));
console.log(`|${width.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(fmt(cols.map((c) => r[c])));
reportJson(
  "triage",
  rows.flatMap((r) => [
    {
      figure: `triage ${r.size}: throughput`,
      value: `${r["triage MB/s"]} MB/s`,
      baseline: `${r["grep -E MB/s"]} MB/s (grep -E -c)`,
      goal: "-",
      met: null,
    },
    {
      figure: `triage ${r.size}: peak RSS`,
      value: r["triage peak RSS"],
      baseline: `${r["grep peak RSS"]} (grep)`,
      goal: "-",
      met: null,
    },
  ]),
);
