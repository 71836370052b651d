#!/usr/bin/env node
// Unpacking a CI build artifact: `unpackArtifact` (src/worker/artifacts.ts, every entry checked)
// against `unzip -p a.zip ttm_any.tar.zst | zstd -d | tar x` (no checks) on the same archive,
// in the same run, interleaved; median and min of several repetitions each.
//
//   npm run bench:unpack [-- --files 2000 --mb 200 --reps 5 --dir /some/folder --keep]
//   node bench/unpack.mjs --compare /path/to/other/artifacts.js   # a third row: another build's
//                                                                 # unpackArtifact (say, before a change)
//
// The archive is generated here: FILES files (sizes spread from a few KB to a few MB, half of
// each file random bytes and half text, so zstd halves it) in a tree of folders with a few
// symbolic links, tarred with GNU tar, compressed with zstd -3 and zipped with deflate the way
// actions/upload-artifact does. Default folder: the OS temporary folder (a disk here);
// `--dir /dev/shm` measures without the disk.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { unpackArtifact } from "../dist/src/worker/artifacts.js";
import { fmtMs, median, reportJson } from "./lib/report.mjs";
import { printTable } from "./lib/table.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const FILES = Number(opt("files", "2000"));
const MB = Number(opt("mb", "200"));
const REPS = Number(opt("reps", "5"));
const KEEP = args.includes("--keep");
const DIR = opt("dir", tmpdir());
const COMPARE = opt("compare", "");
const other = COMPARE ? (await import(pathToFileURL(COMPARE).href)).unpackArtifact : null;
const now = () => performance.now();
const mb = (n) => `${(n / 1024 ** 2).toFixed(1)} MB`;

const work = mkdtempSync(join(DIR, "autofix-bench-unpack-"));
try {
  // 1. The build tree: sizes follow a skewed spread (many small files, a few large ones) scaled
  //    to MB in total.
  const src = join(work, "src");
  const weights = Array.from({ length: FILES }, (_, i) => {
    const r = ((i * 2654435761) % 1000) / 1000; // deterministic spread in [0, 1)
    return 0.02 + r ** 4 * 20;
  });
  const total = MB * 1024 ** 2;
  const sum = weights.reduce((a, b) => a + b, 0);
  const text = Buffer.from(
    "static inline void tt_metal_kernel_dispatch(int core, int noc) {}\n".repeat(2048),
  );
  let written = 0;
  for (let i = 0; i < FILES; i++) {
    const size = Math.max(1, Math.round((weights[i] / sum) * total));
    const d = join(src, "build", `mod${i % 20}`, `sub${Math.floor(i / 20) % 10}`);
    mkdirSync(d, { recursive: true });
    const half = Math.floor(size / 2);
    const body = Buffer.alloc(size);
    randomBytes(half).copy(body, 0);
    for (let o = half; o < size; o += text.length) text.copy(body, o, 0, Math.min(text.length, size - o));
    writeFileSync(join(d, `f${i}.o`), body, { mode: i % 7 === 0 ? 0o755 : 0o644 });
    written += size;
  }
  for (let m = 0; m < 20; m++) symlinkSync(`sub0/f${m}.o`, join(src, "build", `mod${m}`, "latest.o"));
  const tar = join(work, "ttm_any.tar");
  execFileSync("tar", ["-cf", tar, "-C", src, "build"]);
  execFileSync("zstd", ["-q", "-3", "-T1", tar, "-o", `${tar}.zst`]);
  const zip = join(work, "artifact.zip");
  execFileSync("zip", ["-q", "-X", "-6", zip, "ttm_any.tar.zst"], { cwd: work });
  rmSync(src, { recursive: true, force: true });
  rmSync(tar);
  console.log(
    `archive: ${FILES} files, ${mb(written)} in the tar, ${mb(statSync(`${tar}.zst`).size)} .tar.zst, ${mb(statSync(zip).size)} zip (deflate) in ${work}`,
  );

  // 2. Interleaved repetitions into fresh folders.
  const ours = [];
  const base = [];
  const others = [];
  // How long the event loop waited at most during unpackArtifact (small files are written with
  // blocking calls, in slices).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let files = 0;
  for (let rep = 0; rep < REPS; rep++) {
    const a = join(work, `ours-${rep}`);
    mkdirSync(a);
    let t = now();
    loop.enable();
    const r = await unpackArtifact(zip, a, { archives: ["ttm_any.tar.zst"] });
    loop.disable();
    ours.push(now() - t);
    files = r.files;
    if (other) {
      const o = join(work, `other-${rep}`);
      mkdirSync(o);
      t = now();
      await other(zip, o, { archives: ["ttm_any.tar.zst"] });
      others.push(now() - t);
      rmSync(o, { recursive: true, force: true });
    }
    const b = join(work, `base-${rep}`);
    mkdirSync(b);
    t = now();
    const sh = spawnSync(
      "sh",
      ["-c", `unzip -p "$1" ttm_any.tar.zst | zstd -d -q | tar -x -C "$2"`, "sh", zip, b],
      { stdio: "inherit" },
    );
    base.push(now() - t);
    if (sh.status !== 0) throw new Error(`the baseline failed (exit ${sh.status})`);
    const diff = spawnSync("diff", ["-r", "--no-dereference", a, b], { encoding: "utf8" });
    if (diff.status !== 0) throw new Error(`the two unpacks differ:\n${diff.stdout.slice(0, 2000)}`);
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
  const mOurs = median(ours);
  const mBase = median(base);
  printTable(
    ["path", "median", "min", "runs"],
    [
      ["unpackArtifact (checked)", fmtMs(mOurs), fmtMs(Math.min(...ours)), REPS],
      ...(other ? [[`--compare ${COMPARE}`, fmtMs(median(others)), fmtMs(Math.min(...others)), REPS]] : []),
      ["unzip -p | zstd -d | tar x", fmtMs(mBase), fmtMs(Math.min(...base)), REPS],
    ],
  );
  console.log(`unpacked ${files} files; ratio ${(mOurs / mBase).toFixed(2)}x the baseline`);
  console.log(
    `event loop delay during unpackArtifact: p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, max ${(loop.max / 1e6).toFixed(1)} ms`,
  );
  reportJson("unpack", [
    {
      figure: `unpack a ${mb(statSync(zip).size)} zip holding a .tar.zst of ${FILES} files (${mb(written)})`,
      value: fmtMs(mOurs),
      baseline: `${fmtMs(mBase)} unzip|zstd|tar`,
      goal: "within 2x of the baseline",
      met: mOurs <= 2 * mBase,
    },
  ]);
} finally {
  if (!KEEP) rmSync(work, { recursive: true, force: true });
}
