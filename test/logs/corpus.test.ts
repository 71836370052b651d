import { createReadStream, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { triageSchema, triageStream, triageText } from "../../src/logs/index.js";

const DIR = join(import.meta.dirname, "../fixtures/logs");

interface Expected {
  errorClass: string;
  family: string;
  failingTests: string[];
  primaryLine: number;
  signature: string;
  fingerprint: string;
}
const expected: Record<string, Expected> = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8"));
const logs = readdirSync(DIR).filter((f) => f.endsWith(".log"));

describe("log corpus in GitHub Actions format", () => {
  it("has an expectation for every sample and a sample for every expectation", () => {
    expect(logs.sort()).toEqual(Object.keys(expected).sort());
    // Every failure family of the issue is covered.
    const classes = new Set(Object.values(expected).map((e) => e.errorClass));
    for (const c of [
      "device-timeout",
      "init-failure",
      "connection-issue",
      "hardware-error",
      "resource-exhaustion",
      "segfault",
      "assertion-failure",
      "infra",
    ]) {
      expect(classes, c).toContain(c);
    }
  });

  it.each(logs)("%s: failing tests, class and fingerprint", async (file) => {
    const want = expected[file]!;
    const text = readFileSync(join(DIR, file), "utf8");
    // The samples really are in Actions format: BOM, timestamps, groups, errors.
    expect(text.startsWith("\uFEFF")).toBe(true);
    expect(text.split("\n")[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z /);
    expect(text).toContain("##[group]");

    const t = triageSchema.parse(triageText(text));
    expect(t.failureFound).toBe(true);
    expect(t.errorClass).toBe(want.errorClass);
    expect(t.family).toBe(want.family);
    expect(t.failingTests).toEqual(want.failingTests);
    expect(t.primary?.line).toBe(want.primaryLine);
    expect(t.signature).toBe(want.signature);
    expect(t.fingerprint).toBe(want.fingerprint);
    // The excerpt shows the failure line itself, without timestamps or colour codes.
    expect(t.excerpt).toContain(t.primary!.message.slice(0, 40));
    expect(t.excerpt).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z/);
    expect(t.excerpt).not.toContain("\x1b[");

    // Streamed from disk in small chunks (lines and UTF-8 split across chunks): same answer.
    const streamed = await triageStream(createReadStream(join(DIR, file), { highWaterMark: 7 }));
    expect(streamed).toEqual(t);
  });

  it("gives two logs of the same failure (other runner, addresses, paths, times) one fingerprint", () => {
    const a = readFileSync(join(DIR, "pytest-device-timeout-a.log"), "utf8");
    const b = readFileSync(join(DIR, "pytest-device-timeout-b.log"), "utf8");
    expect(a).not.toBe(b);
    expect(triageText(a).fingerprint).toBe(triageText(b).fingerprint);
  });

  it("gives every distinct failure its own fingerprint", () => {
    const byFp = new Map<string, string[]>();
    for (const [file, e] of Object.entries(expected))
      byFp.set(e.fingerprint, [...(byFp.get(e.fingerprint) ?? []), file]);
    const shared = [...byFp.values()].filter((files) => files.length > 1);
    expect(shared).toEqual([["pytest-device-timeout-a.log", "pytest-device-timeout-b.log"]]);
  });
});
