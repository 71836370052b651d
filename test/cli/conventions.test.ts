import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type CliIO,
  describeParseError,
  packageVersion,
  parseCommand,
  streamIO,
  tidyParseMessage,
} from "../../src/cli/command.js";
import { defaultRunDeps } from "../../src/cli/commands/run.js";
import { runCli } from "../../src/cli/run.js";

/** The CLI's conventions: --help and -h everywhere, --version, exit 2 for bad flags, EPIPE. */

const ROOT = resolve(import.meta.dirname, "../..");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
// Built once for the spawned cases, under the repository so the built file finds package.json.
const DIST = join(ROOT, "node_modules", ".cache", "autofix-cli-test-dist");
const MAIN = join(DIST, "src/cli/main.js");

function io(cwd = tmpdir(), env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env, cwd };
  return { value, out, err };
}

const SUBCOMMANDS = [
  ["validate"],
  ["config", "check"],
  ["logs"],
  ["worker"],
  ["doctor"],
  ["status"],
  ["run"],
] as const;

describe("--help and -h", () => {
  it.each(SUBCOMMANDS.flatMap((c) => [[c.join(" "), "--help"] as const, [c.join(" "), "-h"] as const]))(
    "autofix %s %s prints its own usage and options, exit 0",
    async (name, flag) => {
      const t = io();
      // Even next to arguments that would be wrong: help wins and nothing runs.
      expect(await runCli([...name.split(" "), flag, "--bogus"], t.value)).toBe(0);
      expect(t.err).toEqual([]);
      const text = t.out.join("\n");
      expect(text).toMatch(new RegExp(`^usage: autofix ${name}`));
      expect(text).toContain("options:");
      expect(text).toMatch(/-h, --help +show this help/);
    },
  );

  it("autofix run --help describes every option", async () => {
    const t = io();
    expect(await runCli(["run", "--help"], t.value)).toBe(0);
    for (const o of [
      "--repo PATH",
      "--out DIR",
      "--dry-run",
      "--base REF",
      "--github-repo OWNER/NAME",
      "--sandbox MODE",
    ])
      expect(t.out.join("\n")).toContain(o);
  });

  it("autofix --help and -h list every subcommand, exit 0; autofix alone lists them, exit 2", async () => {
    for (const flag of ["--help", "-h", "help"]) {
      const t = io();
      expect(await runCli([flag], t.value)).toBe(0);
      const text = t.out.join("\n");
      for (const c of SUBCOMMANDS) expect(text).toContain(`autofix ${c.join(" ")}`);
      expect(text).toContain("autofix --version");
    }
    const bare = io();
    expect(await runCli([], bare.value)).toBe(2);
    expect(bare.out.join("\n")).toContain("autofix validate");
  });

  it("autofix help <command> is autofix <command> --help", async () => {
    const t = io();
    expect(await runCli(["help", "config", "check"], t.value)).toBe(0);
    expect(t.out[0]).toBe("usage: autofix config check [FILE] [--print]");
  });

  it("autofix config alone explains its subcommand, exit 2; config --help, exit 0", async () => {
    const t = io();
    expect(await runCli(["config"], t.value)).toBe(2);
    expect(t.err[0]).toBe("autofix config needs a subcommand:");
    expect(t.err.join("\n")).toContain("autofix config check [FILE] [--print]");
    const h = io();
    expect(await runCli(["config", "--help"], h.value)).toBe(0);
    expect(h.out.join("\n")).toContain("autofix config check");
    const u = io();
    expect(await runCli(["config", "chek"], u.value)).toBe(2);
    expect(u.err[0]).toBe('autofix config: unknown subcommand "chek"');
  });
});

describe("--version", () => {
  it("prints the version of package.json, exit 0", async () => {
    expect(packageVersion()).toBe(PKG.version);
    for (const flag of ["--version", "-V"]) {
      const t = io();
      expect(await runCli([flag], t.value)).toBe(0);
      expect(t.out).toEqual([PKG.version]);
    }
  });
});

describe("bad flags exit 2 and name the flag", () => {
  it.each(SUBCOMMANDS.map((c) => [c.join(" ")] as const))("autofix %s --bogus", async (name) => {
    const t = io();
    const code = await runCli([...name.split(" "), "--bogus"], t.value);
    expect(code).toBe(2);
    expect(t.out).toEqual([]);
    expect(t.err[0]).toBe(`autofix ${name}: unknown option --bogus`);
    expect(t.err.join("\n")).toMatch(/usage: autofix /);
    // No unbalanced quote from Node's parser message.
    expect(t.err.join("\n")).not.toMatch(/'-- "/);
  });

  it("doctor --frob names the flag (not only the usage)", async () => {
    const t = io();
    expect(await runCli(["doctor", "--frob"], t.value)).toBe(2);
    expect(t.err).toEqual([
      "autofix doctor: unknown option --frob",
      "usage: autofix doctor",
      'run "autofix doctor --help" for the options',
    ]);
  });

  it("a missing value, a value for a switch, an extra argument", async () => {
    const a = io();
    expect(await runCli(["validate", "x.json", "--repo"], a.value)).toBe(2);
    expect(a.err[0]).toBe("autofix validate: option --repo needs a value");
    const b = io();
    expect(await runCli(["status", "--json=yes"], b.value)).toBe(2);
    expect(b.err[0]).toBe("autofix status: option --json takes no value");
    const c = io();
    expect(await runCli(["doctor", "now"], c.value)).toBe(2);
    expect(c.err[0]).toBe('autofix doctor: unexpected argument "now"');
    const d = io();
    expect(await runCli(["validate", "a.json", "b.json"], d.value)).toBe(2);
    expect(d.err[0]).toBe("autofix validate: too many arguments: b.json");
    const e = io();
    expect(await runCli(["logs", "x.log", "--budget", "12"], e.value)).toBe(2);
    expect(e.err[0]).toBe("autofix logs: --budget must be a whole number of bytes, at least 256");
  });

  it("the parser's messages in plain words", () => {
    const parse = (args: string[]) => {
      const t = io();
      const r = parseCommand(
        { usage: "autofix x", summary: "x", options: { v: { type: "string", help: "" } } },
        args,
        t.value,
      );
      return { r, err: t.err };
    };
    expect(parse(["-q"]).err[0]).toBe("autofix x: unknown option -q");
    expect(parse(["--v", "--w"]).err[0]).toMatch(
      /^autofix x: option --v needs a value \(a value that starts with a dash is written --v=-VALUE\)$/,
    );
    expect(parse(["--v", "a"]).r).toMatchObject({ values: { v: "a" }, positionals: [] });
    expect(describeParseError(new Error("plain"))).toBe("plain");
    expect(
      tidyParseMessage(
        "Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--x\"",
      ),
    ).toBe("unknown option --x");
  });
});

describe("a closed stdout (autofix ... | head)", () => {
  it("the first EPIPE drops the rest of the output quietly; stderr still works", () => {
    const written: string[] = [];
    let fail = false;
    const stdout = new Writable({
      write(chunk, _enc, cb) {
        if (fail) {
          const e = Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
          cb(e);
          return;
        }
        written.push(String(chunk));
        cb();
      },
    });
    const stderr = new PassThrough();
    const errText: string[] = [];
    stderr.on("data", (d) => errText.push(String(d)));
    const cli = streamIO(stdout, stderr, {}, "/");
    cli.out("one");
    fail = true;
    cli.out("two");
    return new Promise<void>((done) => {
      setImmediate(() => {
        // The error was handled (no throw); later lines are dropped without writing.
        cli.out("three");
        cli.err("on stderr");
        expect(written).toEqual(["one\n"]);
        expect(errText.join("")).toBe("on stderr\n");
        done();
      });
    });
  });

  describe("spawned", () => {
    beforeAll(() => {
      execFileSync(
        process.execPath,
        [
          join(ROOT, "node_modules/typescript/lib/tsc.js"),
          "-p",
          "tsconfig.build.json",
          "--outDir",
          DIST,
          "--noCheck",
        ],
        { cwd: ROOT, stdio: "ignore" },
      );
    }, 60_000);

    /** Run the built CLI with its stdout's reader gone before it writes (the reader closes first, then stdin is fed). */
    function spawnClosed(args: string[], input: string): Promise<{ code: number | null; stderr: string }> {
      return new Promise((done, fail) => {
        const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d) => {
          stderr += String(d);
        });
        child.on("error", fail);
        child.on("close", (code) => done({ code, stderr }));
        // `logs -` writes nothing before its input ends: the pipe is closed for certain by then.
        child.stdout.destroy();
        child.stdin.end(input);
      });
    }

    it("autofix logs - | head: no EPIPE stack, the command's exit code", async () => {
      const log = `${"noise line\n".repeat(2000)}FAILED tests/a.py::test_b[x] - AssertionError: boom\n`;
      const r = await spawnClosed(["logs", "-"], log);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    });

    it("the built CLI prints the version", () => {
      expect(execFileSync(process.execPath, [MAIN, "--version"], { encoding: "utf8" })).toBe(
        `${PKG.version}\n`,
      );
    });
  });
});

describe("autofix run and SIGTERM", () => {
  it("the default interrupt listener hears SIGTERM as well as SIGINT, and stops listening to both", () => {
    const calls: string[] = [];
    const handler = () => calls.push("stop");
    const stop = defaultRunDeps.onInterrupt(handler);
    try {
      expect(process.listeners("SIGTERM")).toContain(handler);
      expect(process.listeners("SIGINT")).toContain(handler);
      // What the process does on SIGTERM: the same handler as the first Ctrl-C.
      for (const l of process.listeners("SIGTERM")) if (l === handler) (l as () => void)();
      expect(calls).toEqual(["stop"]);
    } finally {
      stop();
    }
    expect(process.listeners("SIGTERM")).not.toContain(handler);
    expect(process.listeners("SIGINT")).not.toContain(handler);
  });
});

describe("validate checks what run checks", () => {
  const dir = mkdtempSync(join(tmpdir(), "autofix-validate-"));
  writeFileSync(
    join(dir, "ok.json"),
    JSON.stringify({ deterministic: true, url: "", prompt: "fix", "raw-logs": "boom" }),
  );

  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@e", ...args], { cwd, stdio: "pipe" });
  const repo = join(dir, "repo");
  execFileSync("mkdir", ["-p", join(repo, "autofix-tests/add/tests"), join(repo, "empty-folder")]);
  writeFileSync(join(repo, "autofix-tests/add/run_test.sh"), "#!/bin/bash\nexit 1\n", { mode: 0o755 });
  writeFileSync(join(repo, "test_committed.py"), "def test_x(): assert False\n");
  git(repo, "init", "-q");
  git(repo, "add", ".");
  git(repo, "commit", "-qm", "base");
  writeFileSync(join(repo, "test_new.py"), "def test_y(): assert False\n");
  const info = (name: string, testPath: string) =>
    writeFileSync(
      join(dir, name),
      JSON.stringify({
        deterministic: true,
        url: "",
        prompt: "fix",
        "raw-logs": "boom",
        "existing-test-path": testPath,
      }),
    );
  info("committed.json", "test_committed.py");
  info("folder.json", "autofix-tests/add");
  info("uncommitted.json", "test_new.py");
  info("empty-folder.json", "empty-folder");

  it("an existing-test-path that is committed, or a folder holding run_test.sh (what phase 1 writes): valid", async () => {
    for (const [file, shown] of [
      ["committed.json", "test_committed.py"],
      ["folder.json", "autofix-tests/add"],
    ] as const) {
      const t = io(dir);
      expect(await runCli(["validate", file, "--repo", "repo"], t.value), t.err.join("\n")).toBe(0);
      expect(t.out).toContain(`  test:      ${shown}`);
    }
  });

  it("an existing-test-path that is not committed: exit 2, as autofix run refuses it", async () => {
    const t = io(dir);
    expect(await runCli(["validate", "uncommitted.json", "--repo", "repo"], t.value)).toBe(2);
    expect(t.err[1]).toMatch(
      /^ {2}- "existing-test-path" test_new.py is not in the base commit [0-9a-f]{10} \(.*commit it first\)$/,
    );
  });

  it("a folder without run_test.sh is not a test", async () => {
    const t = io(dir);
    expect(await runCli(["validate", "empty-folder.json", "--repo", "repo"], t.value)).toBe(2);
    expect(t.err.join("\n")).toContain(
      '"existing-test-path" must be a test file or a folder holding run_test.sh',
    );
  });

  it("--repo that is not a git repository, --base that is not a commit: exit 2", async () => {
    const a = io(dir);
    expect(await runCli(["validate", "ok.json", "--repo", "."], a.value)).toBe(2);
    expect(a.err[1]).toMatch(/is not a git repository/);
    const b = io(dir);
    expect(await runCli(["validate", "committed.json", "--repo", "repo", "--base", "nope"], b.value)).toBe(2);
    expect(b.err[1]).toMatch(/--base nope is not a commit in /);
  });

  it("a --repo that does not exist: 'does not exist', exit 2", async () => {
    const t = io(dir);
    expect(await runCli(["validate", "ok.json", "--repo", "nowhere"], t.value)).toBe(2);
    expect(t.err).toEqual([
      "ok.json is invalid (1 problem):",
      `  - --repo ${join(dir, "nowhere")} does not exist`,
    ]);
  });
});
