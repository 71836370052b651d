import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path, { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  githubOutputText,
  outputsFromRun,
  planAction,
  summaryMarkdown,
} from "../../src/cli/commands/action.js";
import { loadTranscript, type ReplayServer, startReplayServer } from "../../src/demo/replay.js";
import { createDemoRepo } from "../../src/demo/repo.js";

/**
 * The GitHub Action (action.yml) run the way a runner runs a composite action, since `act` is
 * not available here: the steps are read from action.yml, every `${{ }}` expression is evaluated
 * against the inputs (and their defaults), `github`, `runner` and the earlier steps' outputs, each
 * `run:` step is executed by bash with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, `if:` is
 * honoured, and a `uses:` step (the artifact upload) is recorded with its evaluated `with:`. The
 * CLI is the built one (`node dist/src/cli/main.js action`), the model a replay of
 * examples/add-bug's recorded session, the repository a real git checkout.
 */

const ROOT = resolve(import.meta.dirname, "../..");
const DIST = join(ROOT, "node_modules", ".cache", "autofix-action-test-dist");
const MAIN = join(DIST, "src/cli/main.js");
const EXAMPLE = join(ROOT, "examples/add-bug");
const INFO = JSON.parse(readFileSync(join(EXAMPLE, "info.json"), "utf8")) as Record<string, unknown>;

interface ActionYaml {
  inputs: Record<string, { default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: {
    using: string;
    steps: Array<{
      id?: string;
      name?: string;
      if?: string;
      shell?: string;
      run?: string;
      uses?: string;
      env?: Record<string, string>;
      with?: Record<string, string>;
    }>;
  };
}

const ACTION = parseYaml(readFileSync(join(ROOT, "action.yml"), "utf8")) as ActionYaml;

// ---------------------------------------------------------------------------------------------
// A small evaluator of the Actions expressions action.yml uses: contexts (inputs, github, runner,
// steps.<id>.outputs / outcome), string literals, ==, !=, &&, ||, !, always(), success(),
// failure(), format().

type Ctx = {
  inputs: Record<string, string>;
  github: Record<string, string>;
  runner: Record<string, string>;
  steps: Record<string, { outputs: Record<string, string>; outcome: string }>;
  failed: boolean;
};

function tokenize(expr: string): string[] {
  const re = /\s*('(?:[^']|'')*'|&&|\|\||==|!=|!|\(|\)|,|[A-Za-z_][\w.-]*)/gy;
  const out: string[] = [];
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  for (;;) {
    const at = re.lastIndex;
    m = re.exec(expr);
    if (!m) {
      if (expr.slice(at).trim() !== "") throw new Error(`cannot parse expression ${expr} at ${at}`);
      return out;
    }
    out.push(m[1]!);
  }
}

function evaluate(expr: string, ctx: Ctx): string {
  const t = tokenize(expr);
  let i = 0;
  const truthy = (v: string) => v !== "" && v !== "false" && v !== "0";
  const lookup = (name: string): string => {
    const [head, ...rest] = name.split(".");
    if (head === "inputs") {
      const key = rest.join(".");
      if (!(key in ACTION.inputs)) throw new Error(`action.yml refers to an unknown input ${key}`);
      return ctx.inputs[key] ?? "";
    }
    if (head === "github") return ctx.github[rest.join(".")] ?? "";
    if (head === "runner") return ctx.runner[rest.join(".")] ?? "";
    if (head === "steps") {
      const step = ctx.steps[rest[0]!];
      if (rest[1] === "outputs") return step?.outputs[rest.slice(2).join(".")] ?? "";
      if (rest[1] === "outcome") return step?.outcome ?? "";
    }
    throw new Error(`unknown context ${name}`);
  };
  const primary = (): string => {
    const tok = t[i++];
    if (tok === undefined) throw new Error(`unexpected end of ${expr}`);
    if (tok === "(") {
      const v = or();
      if (t[i++] !== ")") throw new Error(`missing ) in ${expr}`);
      return v;
    }
    if (tok === "!") return truthy(primary()) ? "false" : "true";
    if (tok.startsWith("'")) return tok.slice(1, -1).replace(/''/g, "'");
    if (t[i] === "(") {
      i++;
      const args: string[] = [];
      while (t[i] !== ")") {
        args.push(or());
        if (t[i] === ",") i++;
      }
      i++;
      if (tok === "always") return "true";
      if (tok === "success") return ctx.failed ? "false" : "true";
      if (tok === "failure") return ctx.failed ? "true" : "false";
      if (tok === "format") return args[0]!.replace(/\{(\d+)\}/g, (_, n) => args[Number(n) + 1] ?? "");
      throw new Error(`unknown function ${tok}`);
    }
    if (tok === "true" || tok === "false") return tok;
    return lookup(tok);
  };
  const cmp = (): string => {
    let v = primary();
    while (t[i] === "==" || t[i] === "!=") {
      const op = t[i++];
      const w = primary();
      // Actions compares strings case-insensitively.
      const eq = v.toLowerCase() === w.toLowerCase();
      v = (op === "==" ? eq : !eq) ? "true" : "false";
    }
    return v;
  };
  const and = (): string => {
    let v = cmp();
    while (t[i] === "&&") {
      i++;
      const w = cmp();
      v = truthy(v) ? w : v;
    }
    return v;
  };
  const or = (): string => {
    let v = and();
    while (t[i] === "||") {
      i++;
      const w = and();
      v = truthy(v) ? v : w;
    }
    return v;
  };
  const v = or();
  if (i !== t.length) throw new Error(`trailing tokens in ${expr}`);
  return v;
}

/** Replace every `${{ expr }}` the way the runner does: textually, before the shell sees it. */
function interpolate(text: string, ctx: Ctx): string {
  return text.replace(/\$\{\{\s*([\s\S]+?)\s*\}\}/g, (_, e: string) => evaluate(e, ctx));
}

function readOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) body.push(lines[i]!);
      out[heredoc[1]!] = body.join("\n");
    } else if (line.includes("=")) {
      out[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    }
  }
  return out;
}

interface ActionRun {
  outputs: Record<string, string>;
  summary: string;
  log: string;
  /** Steps that failed, by name. */
  failed: string[];
  uploads: Array<Record<string, string>>;
  skipped: string[];
}

async function runAction(
  given: Record<string, string>,
  o: { workspace: string; temp: string; env?: NodeJS.ProcessEnv },
): Promise<ActionRun> {
  for (const k of Object.keys(given))
    if (!(k in ACTION.inputs)) throw new Error(`no input ${k} in action.yml`);
  const ctx: Ctx = {
    inputs: {},
    github: {
      token: "",
      action_path: ROOT,
      workspace: o.workspace,
      run_id: "4242",
      run_attempt: "1",
      repository: "acme/widgets",
    },
    runner: { temp: o.temp, os: "Linux" },
    steps: {},
    failed: false,
  };
  // Defaults are expressions too (`${{ github.token }}`).
  for (const [k, spec] of Object.entries(ACTION.inputs))
    ctx.inputs[k] = k in given ? given[k]! : interpolate(spec.default ?? "", ctx);
  const summaryFile = join(o.temp, "step-summary.md");
  await writeFile(summaryFile, "");
  const run: ActionRun = { outputs: {}, summary: "", log: "", failed: [], uploads: [], skipped: [] };
  expect(ACTION.runs.using).toBe("composite");
  let n = 0;
  for (const step of ACTION.runs.steps) {
    const name = step.name ?? step.id ?? `step ${n}`;
    if (
      !(step.if ? evaluate(step.if.replace(/^\$\{\{|\}\}$/g, ""), ctx) : ctx.failed ? "false" : "true").match(
        /^true$/,
      )
    ) {
      run.skipped.push(name);
      continue;
    }
    if (step.uses) {
      run.uploads.push({
        uses: step.uses,
        ...Object.fromEntries(
          Object.entries(step.with ?? {}).map(([k, v]) => [k, interpolate(String(v), ctx)]),
        ),
      });
      continue;
    }
    expect(step.shell, `${name} names its shell`).toBe("bash");
    const outputFile = join(o.temp, `output-${++n}`);
    await writeFile(outputFile, "");
    const script = join(o.temp, `step-${n}.sh`);
    await writeFile(script, interpolate(step.run!, ctx));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...o.env,
      CI: "true",
      GITHUB_ACTIONS: "true",
      GITHUB_WORKSPACE: o.workspace,
      GITHUB_ACTION_PATH: ROOT,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      RUNNER_TEMP: o.temp,
      ...Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, interpolate(String(v), ctx)])),
    };
    // What `shell: bash` means on a runner.
    const code = await new Promise<number>((done, fail) => {
      const child = spawn("bash", ["--noprofile", "--norc", "-eo", "pipefail", script], {
        cwd: o.workspace,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.on("data", (d) => {
        run.log += d;
      });
      child.stderr.on("data", (d) => {
        run.log += d;
      });
      child.on("error", fail);
      child.on("close", (c) => done(c ?? 1));
    });
    const outputs = readOutputs(await readFile(outputFile, "utf8"));
    if (step.id) ctx.steps[step.id] = { outputs, outcome: code === 0 ? "success" : "failure" };
    if (code !== 0) {
      ctx.failed = true;
      run.failed.push(name);
    }
  }
  for (const [k, spec] of Object.entries(ACTION.outputs)) run.outputs[k] = interpolate(spec.value, ctx);
  run.summary = await readFile(summaryFile, "utf8");
  return run;
}

// ---------------------------------------------------------------------------------------------

const dirs: string[] = [];
async function tempDir(name: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), `autofix-action-test-${name}-`));
  // The run's sandbox may run as another uid (bubblewrap as root): it must pass through.
  await chmod(d, 0o755);
  dirs.push(d);
  return d;
}

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
}, 120_000);
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("the GitHub Action", () => {
  let server: ReplayServer | undefined;
  afterAll(() => server?.close());

  it("runs autofix run from the info.json inputs: outputs, the job summary, the report, the artifact upload", async () => {
    const workspace = await tempDir("ws");
    const temp = await tempDir("temp");
    const repo = join(workspace, "widgets");
    await createDemoRepo(join(EXAMPLE, "repo"), repo);
    server = await startReplayServer(await loadTranscript(join(EXAMPLE, "transcript.json")));
    const run = await runAction(
      {
        deterministic: String(INFO.deterministic),
        prompt: String(INFO.prompt),
        "raw-logs": String(INFO["raw-logs"]),
        repo: "widgets",
        "reproduce-minutes": "3",
        "autofix-command": MAIN,
      },
      {
        workspace,
        temp,
        // The runner's environment: the key (a secret), and the replayed model.
        env: { ANTHROPIC_API_KEY: "demo", ANTHROPIC_BASE_URL: server.url },
      },
    );
    expect(server.refusals()).toEqual([]);
    expect(run.failed, run.log).toEqual([]);
    const branch = "autofix/add-sh-drops-the-last-number";
    expect(run.outputs).toMatchObject({
      status: "succeeded",
      "exit-code": "0",
      branch,
      pushed: "false",
      "pr-url": "",
    });
    expect(run.outputs["fix-sha"]).toMatch(/^[0-9a-f]{12}$/);
    // The report is where the output says, in $RUNNER_TEMP/autofix-reports, outside the checkout.
    const reportPath = run.outputs["report-path"]!;
    expect(reportPath.startsWith(join(temp, "autofix-reports"))).toBe(true);
    const report = await readFile(reportPath, "utf8");
    expect(report).toContain("- **Status:** Success");
    // The budget input reached the run.
    expect(run.log).toMatch(/reproduce: started · budget 3 min/);
    // The job summary: the outcome table, then the report itself.
    expect(run.summary).toContain("## Autofix: Success");
    expect(run.summary).toContain(`| fix branch | \`${branch}\` at \`${run.outputs["fix-sha"]}\` |`);
    expect(run.summary).toContain(report.trim().split("\n")[0]!);
    expect(run.summary).toContain("- **Status:** Success");
    // The report is uploaded as an artifact named after the run.
    expect(run.uploads).toEqual([
      {
        uses: "actions/upload-artifact@v4",
        name: "autofix-report-4242-1",
        path: reportPath,
        "if-no-files-found": "warn",
      },
    ]);
    // The fix is in the repository the action was given.
    const fixed = execFileSync("git", ["-C", repo, "show", `${branch}:src/add.sh`], { encoding: "utf8" });
    expect(fixed).not.toEqual(readFileSync(join(EXAMPLE, "repo/src/add.sh"), "utf8"));
  }, 120_000);

  it("bad inputs: nothing runs, the step fails with every problem, the outputs and summary say so, no upload", async () => {
    const workspace = await tempDir("ws");
    const temp = await tempDir("temp");
    const marker = join(temp, "pwned");
    const run = await runAction(
      {
        deterministic: "yes",
        // An attacker's prompt (workflow_dispatch input, say): it must never be run as shell.
        prompt: `"; touch ${marker}; echo "$(touch ${marker})\`touch ${marker}\``,
        url: "https://example.com/not-actions",
        "max-turns": "2.5",
        "autofix-command": MAIN,
      },
      { workspace, temp, env: { ANTHROPIC_API_KEY: "demo" } },
    );
    expect(existsSync(marker)).toBe(false);
    expect(run.failed).toEqual(["Run Autofix"]);
    expect(run.outputs).toMatchObject({ status: "invalid", "exit-code": "2", "report-path": "", branch: "" });
    expect(run.log).toContain('input "deterministic" must be true or false; got "yes"');
    expect(run.log).toContain('"url" must be a GitHub Actions run or job URL');
    expect(run.log).toContain('input "max-turns" must be a positive whole number; got "2.5"');
    expect(run.summary).toContain("## Autofix: Not started");
    expect(run.summary).toContain('- input "deterministic" must be true or false; got "yes"');
    expect(run.uploads).toEqual([]);
    expect(run.skipped).toEqual(["Upload the report"]);
  });

  it("an info-json file instead of the fields; giving both is refused", async () => {
    const workspace = await tempDir("ws");
    const temp = await tempDir("temp");
    await mkdir(join(workspace, ".github/autofix"), { recursive: true });
    await writeFile(
      join(workspace, ".github/autofix/info.json"),
      JSON.stringify({ ...INFO, deterministic: "true" }),
    );
    const both = await runAction(
      { "info-json": ".github/autofix/info.json", prompt: "also this", "autofix-command": MAIN },
      { workspace, temp },
    );
    expect(both.outputs.status).toBe("invalid");
    expect(both.log).toContain('give either "info-json" or the request inputs');
    // The file's own rules are autofix run's: the quoted "true" is refused before anything runs.
    const file = await runAction(
      { "info-json": ".github/autofix/info.json", "autofix-command": MAIN },
      { workspace, temp, env: { ANTHROPIC_API_KEY: "demo" } },
    );
    expect(file.outputs).toMatchObject({ status: "invalid", "exit-code": "2" });
    expect(file.log).toContain('"deterministic" must be true or false without quotes');
    expect(file.summary).toContain('"deterministic" must be true or false without quotes');
  });
});

describe("the action's pure parts", () => {
  const base = { GITHUB_WORKSPACE: "/ws", RUNNER_TEMP: "/rt" };

  it("plans autofix run's arguments and environment from the inputs", () => {
    const r = planAction({
      ...base,
      INPUT_DETERMINISTIC: "false",
      INPUT_PROMPT: "fix it",
      INPUT_URL: "https://github.com/o/r/actions/runs/5",
      INPUT_REPO: "src/metal",
      INPUT_BASE: "origin/main",
      INPUT_SANDBOX: "bwrap",
      INPUT_FIX_MINUTES: "12",
      INPUT_MAX_COST_USD: "4.5",
      INPUT_GITHUB_TOKEN: "ghs_x",
      INPUT_PUBLISH: "false",
      INPUT_MODEL: "claude-x",
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan.args).toEqual([
      "--repo",
      "/ws/src/metal",
      "--base",
      "origin/main",
      "--out",
      "/rt/autofix-reports",
      "--sandbox",
      "bwrap",
      "--budget",
      "fix_minutes=12",
      "--budget",
      "max_cost_usd=4.5",
      // publish: false with a token: the token still reads the url's logs; a dry run pushes nothing.
      "--dry-run",
    ]);
    expect(r.plan.env).toMatchObject({
      GITHUB_TOKEN: "ghs_x",
      GH_TOKEN: undefined,
      AUTOFIX_MODEL: "claude-x",
    });
    expect(r.plan.info).toEqual({
      kind: "inputs",
      value: {
        deterministic: false,
        prompt: "fix it",
        url: "https://github.com/o/r/actions/runs/5",
        "raw-logs": "",
        "existing-test-path": "",
      },
    });
  });

  it("reads the run's summary into outputs, and writes multi-line values safely", () => {
    const o = outputsFromRun(
      [
        "Status: Partial (exit 3): no fix passed",
        "  fix:          none accepted; no fix branch was created",
        "  pushed:       autofix/x at 0123456789ab to origin",
        "  pull request: https://github.com/o/r/pull/9 (opened, draft)",
        "Report: /rt/r/2026.md",
      ],
      3,
    );
    expect(o).toEqual({
      status: "partial",
      "exit-code": "3",
      branch: "autofix/x",
      "fix-sha": "",
      "pr-url": "https://github.com/o/r/pull/9",
      pushed: "true",
      "report-path": "/rt/r/2026.md",
    });
    expect(githubOutputText({ a: "1", b: "x\ny" }, "EOF_1")).toBe("a=1\nb<<EOF_1\nx\ny\nEOF_1\n");
    const md = summaryMarkdown(o, "# Report\n".repeat(200_000));
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(1_000_000);
    expect(md).toContain("report clipped; the full report is in the artifact");
  });
});
