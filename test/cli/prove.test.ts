import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterEach, describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { commandOf, commonFolder, createProveCommand } from "../../src/cli/run/prove.js";
import { runCli } from "../../src/cli/run.js";
import { localReproCommand } from "../../src/publish/report.js";
import { makeRepo, sh, type TestRepo } from "../agent/repo.js";
import { ADD_BUGGY } from "../helpers/add-bug.js";

/**
 * `autofix prove` end to end: a real repository made with plain git (a base with the bug, the
 * reproduction commit in refs/autofix-repro/<branch> as `autofix run` leaves it, fix branches),
 * the test run in the real sandbox (bubblewrap on the test hosts, as `autofix run`'s tests).
 */

const TEST_DIR = "autofix-tests/add";
const RUN = `bash ${TEST_DIR}/run_test.sh`;
const dirs: string[] = [];
let repo: TestRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `autofix-prove-test-${name}-`));
  // The sandbox may run as another uid (bubblewrap as root): it must pass through.
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}

async function prove(args: string[], cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, cwd };
  const tmp = await tempDir("work");
  const code = await runCli(["prove", ...args], io, [createProveCommand({ tmpDir: () => tmp })]);
  return { code, out, err, text: [...out, ...err].join("\n"), tmp };
}

/** Write files, commit them on top of `parent` as a new commit (no branch moved); its sha. */
async function commitOn(
  dir: string,
  parent: string,
  files: Record<string, string>,
  message: string,
): Promise<string> {
  await sh(dir, "checkout", "-q", "--detach", parent);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content, { mode: rel.endsWith(".sh") ? 0o755 : 0o644 });
    await sh(dir, "add", rel);
  }
  await sh(dir, "commit", "-q", "-m", message);
  const sha = await sh(dir, "rev-parse", "HEAD");
  await sh(dir, "checkout", "-q", "main");
  return sha;
}

const TEST_FILES = {
  [`${TEST_DIR}/run_test.sh`]: `#!/usr/bin/env bash\ncd "$(dirname "$0")/../.."\nout=$(bash src/add.sh 2 3)\n[ "$out" = 5 ] || { echo "expected 5, got $out"; exit 1; }\necho ok\n`,
  [`${TEST_DIR}/README.md`]: "# add\nShows that add.sh subtracts.\n",
};
const FIXED = ADD_BUGGY.replace("$1 - $2", "$1 + $2");
const reproMessage = `autofix: reproduction test for add\n\nadd.sh prints 2-3 instead of 2+3\n\nRun: ${RUN}`;

/** The repository `autofix run` leaves: main at the base, a repro ref, and fix branches. */
async function scene(): Promise<{ dir: string; base: string; repro: string }> {
  repo = await makeRepo({ "src/add.sh": { content: ADD_BUGGY, mode: 0o755 }, "README.md": "calc\n" });
  const dir = repo.dir;
  const base = repo.baseSha;
  const repro = await commitOn(dir, base, TEST_FILES, reproMessage);
  // A proven fix without the test (the PR's default), and one that does not fix.
  const good = await commitOn(dir, base, { "src/add.sh": FIXED }, "autofix: add, not subtract");
  await sh(dir, "update-ref", "refs/heads/autofix/add", good);
  await sh(dir, "update-ref", "refs/autofix-repro/autofix/add", repro);
  const bad = await commitOn(
    dir,
    base,
    { "README.md": "calc, documented\n" },
    "autofix: a fix that fixes nothing",
  );
  await sh(dir, "update-ref", "refs/heads/autofix/add-bad", bad);
  await sh(dir, "update-ref", "refs/autofix-repro/autofix/add-bad", repro);
  return { dir, base, repro };
}

describe("autofix prove", () => {
  it("a fix branch whose frozen test fails on the base and passes on the fix: exit 0, nothing left behind", async () => {
    const { dir, base, repro } = await scene();
    const statusBefore = await sh(dir, "status", "--porcelain");
    const r = await prove(["autofix/add"], dir);
    expect(r.code, r.text).toBe(0);
    expect(r.out).toContain(
      `  frozen test: ${TEST_DIR} (tree ${(await sh(dir, "rev-parse", `${repro}:${TEST_DIR}`)).slice(0, 12)}) from refs/autofix-repro/autofix/add`,
    );
    expect(r.out).toContain(`  command:     ${RUN}`);
    // The same sandbox as autofix run's: bubblewrap here (the test hosts have it).
    expect(r.out.find((l) => l.startsWith("  sandbox:"))).toMatch(/^ {2}sandbox: {5}bubblewrap/);
    expect(r.out.some((l) => l.startsWith(`  base:        ${base.slice(0, 12)}`))).toBe(true);
    expect(r.out).toContain("base + test: run 1/1 failed (exit 1), as it must");
    expect(r.out).toContain("fix + test : run 1/1 passed (exit 0), as it must");
    expect(r.out.at(-1)).toBe(
      `Proven: the frozen test fails on the base ${base.slice(0, 12)} and passes on autofix/add.`,
    );
    // The working tree and the branches are as they were; the temporary checkouts are gone.
    expect(await sh(dir, "status", "--porcelain")).toBe(statusBefore);
    expect(await sh(dir, "rev-parse", "HEAD")).toBe(base);
    expect(existsSync(path.join(dir, TEST_DIR))).toBe(false);
    expect(await readdir(r.tmp)).toEqual([]);
  });

  it("a fix that does not fix: exit 1, the failing output shown", async () => {
    const { dir } = await scene();
    const r = await prove(["--repo", dir, "autofix/add-bad"], await tempDir("cwd"));
    expect(r.code, r.text).toBe(1);
    expect(r.out).toContain("base + test: run 1/1 failed (exit 1), as it must");
    expect(r.out).toContain("fix + test : run 1/1 failed (exit 1): it must pass");
    expect(r.out).toContain("    | expected 5, got -1");
    expect(r.out.at(-1)).toBe(
      "Not proven: the test does not pass on autofix/add-bad: the fix does not fix it.",
    );
  });

  it("a test that passes on the base proves nothing: exit 1", async () => {
    const { dir, base } = await scene();
    const passing = await commitOn(
      dir,
      base,
      { [`${TEST_DIR}/run_test.sh`]: "#!/usr/bin/env bash\necho ok\n" },
      `autofix: reproduction test for add\n\nnone\n\nRun: ${RUN}`,
    );
    await sh(dir, "update-ref", "refs/autofix-repro/autofix/add", passing);
    const r = await prove(["--runs", "2", "autofix/add"], dir);
    expect(r.code, r.text).toBe(1);
    expect(r.out).toContain("base + test: run 1/2 passed (exit 0): it must fail");
    expect(r.out).toContain("fix + test : run 2/2 passed (exit 0), as it must");
    expect(r.out.at(-1)).toBe(
      "Not proven: the test passed on the base: it does not reproduce the failure there.",
    );
  });

  it("a branch that carries the test: found in its history without the repro ref", async () => {
    const { dir, repro } = await scene();
    const onTop = await commitOn(dir, repro, { "src/add.sh": FIXED }, "autofix: add, not subtract");
    await sh(dir, "update-ref", "refs/heads/autofix/with-test", onTop);
    const r = await prove(["refs/heads/autofix/with-test"], dir);
    expect(r.code, r.text).toBe(0);
    expect(r.out.some((l) => /from the reproduction commit in autofix\/with-test's history$/.test(l))).toBe(
      true,
    );
    expect(r.out.some((l) => l.includes("(carries the frozen test)"))).toBe(true);
  });

  it("the fix's own copy of the test does not count: the frozen one is put in place", async () => {
    const { dir, base } = await scene();
    // The branch weakens the test: on the fix side the frozen test still runs.
    const cheat = await commitOn(
      dir,
      base,
      { [`${TEST_DIR}/run_test.sh`]: "#!/usr/bin/env bash\nexit 0\n" },
      "autofix: the test always passes",
    );
    await sh(dir, "update-ref", "refs/heads/autofix/cheat", cheat);
    await sh(
      dir,
      "update-ref",
      "refs/autofix-repro/autofix/cheat",
      await sh(dir, "rev-parse", "refs/autofix-repro/autofix/add"),
    );
    const r = await prove(["autofix/cheat"], dir);
    expect(r.code, r.text).toBe(1);
    expect(r.out).toContain("fix + test : run 1/1 failed (exit 1): it must pass");
  });

  it("bad input: exit 2 with what is wrong; --help exit 0", async () => {
    const { dir, base } = await scene();
    const help = await prove(["--help"], dir);
    expect(help.code).toBe(0);
    expect(help.out[0]).toMatch(/^usage: autofix prove \[--repo PATH\]/);

    const cases: Array<[string[], string]> = [
      [[], "autofix prove: name the fix branch"],
      [["nope"], `autofix prove: no branch or commit nope in ${dir}`],
      [["main"], "autofix prove: no frozen test for main: refs/autofix-repro/main does not exist"],
      [["--repo", "/does/not/exist", "autofix/add"], "autofix prove: --repo /does/not/exist does not exist"],
      [["--runs", "0", "autofix/add"], "autofix prove: --runs must be a whole number from 1 to 100"],
      [
        ["--sandbox", "magic", "autofix/add"],
        "autofix prove: --sandbox must be one of auto, bwrap, container, none",
      ],
      [["--frob", "autofix/add"], "autofix prove: unknown option --frob"],
    ];
    for (const [args, message] of cases) {
      const r = await prove(args, dir);
      expect(r.code, `${args.join(" ")}: ${r.text}`).toBe(2);
      expect(r.err[0]).toContain(message);
    }
    const plain = await tempDir("plain");
    const p = await prove(["autofix/add"], plain);
    expect(p.code).toBe(2);
    expect(p.err[0]).toContain(`${plain} is not a git repository`);
    // A fix branch that does not build on the test's base.
    const elsewhere = await commitOn(dir, base, { "x.txt": "x\n" }, "other base");
    const stray = await commitOn(dir, elsewhere, { "src/add.sh": FIXED }, "fix");
    await sh(dir, "update-ref", "refs/heads/autofix/stray", stray);
    const repro2 = await commitOn(dir, elsewhere, TEST_FILES, reproMessage);
    await sh(dir, "update-ref", "refs/autofix-repro/autofix/add", repro2);
    const s = await prove(["autofix/add"], dir);
    expect(s.code).toBe(2);
    expect(s.err[0]).toContain(`autofix/add does not build on ${elsewhere.slice(0, 12)}`);
  });
});

describe("the hint printed after autofix run", () => {
  it("runs the frozen test from the repro ref as printed, and removes its worktree", async () => {
    const { dir } = await scene();
    const cwd = await tempDir("cwd");
    const command = localReproCommand({ branch: "autofix/add", command: RUN, repo: dir });
    const r = await execa("bash", ["-c", command], {
      cwd,
      reject: false,
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1" },
    });
    // The test fails on the base, as a reproduction must; the worktree is gone afterwards.
    expect(r.stdout).toContain("expected 5, got -1");
    expect(existsSync("/tmp/autofix-repro-autofix-add")).toBe(false);
    expect((await sh(dir, "worktree", "list", "--porcelain")).match(/^worktree /gm)).toHaveLength(1);
  });
});

describe("prove's pure parts", () => {
  it("commonFolder and commandOf", () => {
    expect(commonFolder(["autofix-tests/a/run_test.sh", "autofix-tests/a/tests/t.sh"])).toBe(
      "autofix-tests/a",
    );
    expect(commonFolder(["a.sh"])).toBe("");
    expect(commandOf("autofix: reproduction test for x\n\nmode\n\nRun: bash t/run_test.sh", "t")).toBe(
      "bash t/run_test.sh",
    );
    expect(commandOf("no command line", "a b")).toBe("bash 'a b/run_test.sh'");
  });
});
