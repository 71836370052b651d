import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { createRunCommand } from "../../src/cli/commands/run.js";
import { writableFolder } from "../../src/cli/run/preflight.js";
import { runCli } from "../../src/cli/run.js";
import { makeRepo, sh, type TestRepo } from "../agent/repo.js";
import { ADD_BUGGY } from "../helpers/add-bug.js";

/**
 * `autofix run`'s preflight on a real machine: a report folder where no file can be created is
 * refused before anything starts, a report folder left untracked in the checkout is pointed
 * out, and a --repo that does not exist says so. No model is called: the client points at a
 * closed port and every refusal happens before it would be used.
 */

const dirs: string[] = [];
let repo: TestRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `autofix-preflight-${name}-`));
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}

const info = {
  deterministic: true,
  url: "",
  prompt: "add.sh returns the wrong sum",
  "raw-logs": "expected 5, got -1",
  "existing-test-path": "",
};

async function run(args: string[], cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { ANTHROPIC_API_KEY: "test-key" },
    cwd,
  };
  const tmp = await tempDir("work");
  let sandboxAsked = false;
  const command = createRunCommand({
    tmpDir: () => tmp,
    onInterrupt: () => () => {},
    // Preflight refusals come before the sandbox: reaching it means preflight passed.
    sandbox: async () => {
      sandboxAsked = true;
      return { ok: false, problem: "sandbox reached (test stops here)" };
    },
  });
  const code = await runCli(["run", ...args], io, [command]);
  return { code, out, err, text: [...out, ...err].join("\n"), sandboxAsked: () => sandboxAsked };
}

describe("autofix run --out: a folder where a file can really be created", () => {
  it("refuses /proc and /sys before anything starts (exit 2)", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    const cwd = await tempDir("cwd");
    await writeFile(path.join(cwd, "info.json"), JSON.stringify(info));
    for (const [out, fs] of [
      ["/proc/autofix-test", "proc"],
      ["/sys/x", "sysfs"],
    ] as const) {
      const r = await run(["--repo", repo.dir, "--out", out], cwd);
      expect(r.code, r.text).toBe(2);
      expect(r.err).toContain(
        `  - cannot write the report to ${out}: ${path.dirname(out)} is on the kernel's ${fs} file system, which holds no reports`,
      );
      expect(r.sandboxAsked()).toBe(false);
      expect(existsSync(out)).toBe(false);
    }
  });

  it("writableFolder creates and removes a real probe file; a file in the way is named", async () => {
    const d = await tempDir("probe");
    expect(await writableFolder(path.join(d, "reports", "new"))).toBeNull();
    expect(await readdir(d)).toEqual([]);
    await writeFile(path.join(d, "file"), "x");
    expect(await writableFolder(path.join(d, "file", "sub"))).toBe(`${path.join(d, "file")} is not a folder`);
    expect(await writableFolder("/proc/self/autofix")).toMatch(/is on the kernel's proc file system/);
  });
});

describe("autofix run: the report folder inside the checkout", () => {
  it("notes an outputs/ that is inside the repository and not ignored; says nothing once ignored or outside", async () => {
    repo = await makeRepo({ "src/add.sh": ADD_BUGGY });
    await writeFile(path.join(repo.dir, "info.json"), JSON.stringify(info));
    await sh(repo.dir, "add", "info.json");
    await sh(repo.dir, "commit", "-q", "-m", "info");
    const note =
      "note: outputs/ is inside the repository and not ignored: add it to .gitignore or pass --out";

    const inside = await run([], repo.dir);
    expect(inside.out).toContain(note);
    expect(inside.sandboxAsked()).toBe(true);

    const sub = await run(["--out", "reports/run1"], repo.dir);
    expect(sub.out).toContain(
      "note: reports/run1/ is inside the repository and not ignored: add it to .gitignore or pass --out",
    );

    await writeFile(path.join(repo.dir, ".gitignore"), "outputs/\n");
    const ignored = await run([], repo.dir);
    expect(ignored.out.filter((l) => l.includes("inside the repository"))).toEqual([]);

    const elsewhere = await tempDir("out");
    const outside = await run(["--out", elsewhere], repo.dir);
    expect(outside.out.filter((l) => l.includes("inside the repository"))).toEqual([]);
  });
});

describe("autofix run --repo", () => {
  it("a path that does not exist says so (exit 2), like validate", async () => {
    const cwd = await tempDir("cwd");
    await writeFile(path.join(cwd, "info.json"), JSON.stringify(info));
    const r = await run(["--repo", "/does/not/exist"], cwd);
    expect(r.code).toBe(2);
    expect(r.err).toContain("  - --repo /does/not/exist does not exist");
    expect(r.text).not.toContain("not a git repository");
  });
});
