#!/usr/bin/env node
// The npm mirror this project is built against lacks some platform builds of Biome and
// msgpackr-extract, so `npm install` here writes a package-lock.json without their entries and
// `npm ci` then refuses the lock as out of sync. This puts the entries back, with the os/cpu/libc
// that the packages declare, so npm ci skips them on other platforms without fetching anything.
// Run it after any `npm install` that changes the lock: `node scripts/lock-platforms.mjs`.
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const pk = lock.packages;

const PLATFORMS = {
  "android-arm64": { os: ["android"], cpu: ["arm64"] },
  "android-x64": { os: ["android"], cpu: ["x64"] },
  "darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "darwin-x64": { os: ["darwin"], cpu: ["x64"] },
  "linux-arm": { os: ["linux"], cpu: ["arm"] },
  "linux-arm64": { os: ["linux"], cpu: ["arm64"], libc: ["glibc"] },
  "linux-arm64-musl": { os: ["linux"], cpu: ["arm64"], libc: ["musl"] },
  "linux-x64": { os: ["linux"], cpu: ["x64"], libc: ["glibc"] },
  "linux-x64-musl": { os: ["linux"], cpu: ["x64"], libc: ["musl"] },
  "win32-arm64": { os: ["win32"], cpu: ["arm64"] },
  "win32-x64": { os: ["win32"], cpu: ["x64"] },
};

let added = 0;
for (const [parentPath, parent] of Object.entries(pk)) {
  for (const [name, version] of Object.entries(parent.optionalDependencies ?? {})) {
    const m = /^@(biomejs\/cli|msgpackr-extract\/msgpackr-extract)-(.+)$/.exec(name);
    if (!m) continue;
    const key = `node_modules/${name}`;
    if (pk[key]) continue;
    const platform = PLATFORMS[m[2]];
    if (!platform) throw new Error(`unknown platform in ${name}`);
    const libc = name.startsWith("@biomejs/") ? platform.libc : undefined;
    pk[key] = {
      version,
      ...(parent.dev ? { dev: true } : {}),
      optional: true,
      license: name.startsWith("@biomejs/") ? "MIT OR Apache-2.0" : "MIT",
      os: platform.os,
      cpu: platform.cpu,
      ...(libc ? { libc } : {}),
    };
    added++;
    void parentPath;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(pk).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-platforms: ${added} platform entr${added === 1 ? "y" : "ies"} restored`);
