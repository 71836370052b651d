import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/run.js";

function io(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, cwd };
  return { value, out, err };
}

describe("autofix CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "autofix-cli-"));

  it("validate: exit 0 for a valid info.json and a summary of what will happen", async () => {
    writeFileSync(
      join(dir, "ok.json"),
      JSON.stringify({ deterministic: false, url: "", prompt: "hang", "raw-logs": "TT_THROW" }),
    );
    const t = io(dir);
    expect(await runCli(["validate", "ok.json"], t.value)).toBe(0);
    expect(t.out.join("\n")).toMatch(/non-deterministic \(stress test, 5\/5 gates\)/);
  });

  it("validate: exit 2 and every problem printed for an invalid info.json", async () => {
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ deterministic: "false", prompt: "" }));
    const t = io(dir);
    expect(await runCli(["validate", "bad.json"], t.value)).toBe(2);
    expect(t.err[0]).toBe("bad.json is invalid (3 problems):");
    expect(t.err).toHaveLength(4);
  });

  it("config check: warnings and exit 0 for unknown keys, exit 2 with the errors for a bad file", async () => {
    writeFileSync(join(dir, "good.yml"), "trigger_label: fix-me\nunknown_thing: 1\n");
    writeFileSync(join(dir, "bad.yml"), "failure_threshold: 0\n");
    const good = io(dir);
    expect(await runCli(["config", "check", "good.yml", "--print"], good.value)).toBe(0);
    expect(good.out[0]).toBe("warning: unknown key `unknown_thing` (ignored)");
    expect(good.out.join("\n")).toContain('"trigger_label": "fix-me"');
    const bad = io(dir);
    expect(await runCli(["config", "check", "bad.yml"], bad.value)).toBe(2);
    expect(bad.err.join("\n")).toMatch(/`failure_threshold`: Too small/);
  });

  it("unknown commands and missing arguments exit 2 with a pointer to help", async () => {
    const t = io(dir);
    expect(await runCli(["frobnicate"], t.value)).toBe(2);
    expect(t.err[0]).toMatch(/unknown command "frobnicate"/);
    expect(await runCli(["validate"], t.value)).toBe(2);
    expect(t.err[1]).toMatch(/^usage: autofix validate/);
  });
});
