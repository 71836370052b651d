import { randomBytes } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { INFO_JSON_FIELDS, validateInfoJson } from "../../contracts/info-json.js";
import { OUTCOME_LABEL, type Outcome } from "../../contracts/outcome.js";
import { redact, redactor } from "../../shared/redact.js";
import { type CliCommand, type CliIO, type CommandSpec, EXIT, parseCommand } from "../command.js";
import { runLocalCommand } from "./run.js";

/**
 * `autofix action`: the entry point of the GitHub Action (action.yml). It reads the action's
 * inputs from `INPUT_*` variables (the composite step passes them through `env:`, never
 * spliced into the script), builds the info.json of the original framework from them (or takes
 * the `info-json` file), runs `autofix run`, and hands the result to the workflow: outputs in
 * `$GITHUB_OUTPUT`, the report in `$GITHUB_STEP_SUMMARY`. The exit code is `autofix run`'s.
 */

/** The action's inputs, by the environment variable the composite step sets. */
export const ACTION_INPUTS = {
  "info-json": "INPUT_INFO_JSON",
  deterministic: "INPUT_DETERMINISTIC",
  url: "INPUT_URL",
  prompt: "INPUT_PROMPT",
  "raw-logs": "INPUT_RAW_LOGS",
  "existing-test-path": "INPUT_EXISTING_TEST_PATH",
  "allow-test-changes": "INPUT_ALLOW_TEST_CHANGES",
  repo: "INPUT_REPO",
  base: "INPUT_BASE",
  out: "INPUT_OUT",
  sandbox: "INPUT_SANDBOX",
  publish: "INPUT_PUBLISH",
  "dry-run": "INPUT_DRY_RUN",
  "github-repo": "INPUT_GITHUB_REPO",
  "github-token": "INPUT_GITHUB_TOKEN",
  "anthropic-api-key": "INPUT_ANTHROPIC_API_KEY",
  model: "INPUT_MODEL",
  "reproduce-minutes": "INPUT_REPRODUCE_MINUTES",
  "fix-minutes": "INPUT_FIX_MINUTES",
  "build-minutes": "INPUT_BUILD_MINUTES",
  "max-turns": "INPUT_MAX_TURNS",
  "max-cost-usd": "INPUT_MAX_COST_USD",
} as const;

export type ActionInput = keyof typeof ACTION_INPUTS;

/** Budget inputs and the `.github/autofix.yml` budget each one overrides. */
export const BUDGET_INPUTS: ReadonlyArray<[ActionInput, string]> = [
  ["reproduce-minutes", "reproduce_minutes"],
  ["fix-minutes", "fix_minutes"],
  ["build-minutes", "build_minutes"],
  ["max-turns", "max_turns"],
  ["max-cost-usd", "max_cost_usd"],
];

/** The request inputs are the info.json fields, by the same names. */
const REQUEST_INPUTS: readonly ActionInput[] = INFO_JSON_FIELDS;

export interface ActionPlan {
  /** The info.json to run: the `info-json` input's file, or one written from the inputs. */
  info: { kind: "file"; path: string } | { kind: "inputs"; value: Record<string, unknown> };
  /** `autofix run`'s arguments after the info.json. */
  args: string[];
  /** The variables `autofix run` sees on top of the step's. */
  env: Record<string, string | undefined>;
  outDir: string;
  notes: string[];
}

export type ActionPlanResult = { ok: true; plan: ActionPlan } | { ok: false; problems: string[] };

function bool(name: string, v: string, problems: string[]): boolean | undefined {
  const t = v.trim().toLowerCase();
  if (t === "") return undefined;
  if (t === "true") return true;
  if (t === "false") return false;
  problems.push(`input "${name}" must be true or false; got ${JSON.stringify(v)}`);
  return undefined;
}

/**
 * What the inputs ask for, with every problem at once. Pure: `env` is the step's environment
 * (GITHUB_WORKSPACE and RUNNER_TEMP locate relative paths and the report folder).
 */
export function planAction(env: NodeJS.ProcessEnv): ActionPlanResult {
  const input = (name: ActionInput) => env[ACTION_INPUTS[name]] ?? "";
  const problems: string[] = [];
  const notes: string[] = [];
  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  const temp = env.RUNNER_TEMP || tmpdir();
  const at = (p: string) => (isAbsolute(p) ? p : resolve(workspace, p));

  let info: ActionPlan["info"];
  const infoJson = input("info-json").trim();
  const given = REQUEST_INPUTS.filter((n) => input(n).trim() !== "");
  if (infoJson) {
    if (given.length > 0)
      problems.push(
        `give either "info-json" or the request inputs (${REQUEST_INPUTS.join(", ")}), not both; got info-json and ${given.join(", ")}`,
      );
    info = { kind: "file", path: at(infoJson) };
  } else {
    const value: Record<string, unknown> = {};
    const det = bool("deterministic", input("deterministic"), problems);
    if (det === undefined && input("deterministic").trim() === "")
      problems.push('input "deterministic" is required (true or false) when no "info-json" is given');
    else if (det !== undefined) value.deterministic = det;
    for (const f of ["url", "prompt", "raw-logs", "existing-test-path"] as const) value[f] = input(f);
    const allow = bool("allow-test-changes", input("allow-test-changes"), problems);
    if (allow !== undefined) value["allow-test-changes"] = allow;
    // The same rules as a file's (the repository checks come with autofix run's preflight).
    const checked = validateInfoJson(value);
    if (!checked.ok)
      problems.push(...checked.problems.filter((p) => !p.startsWith('"deterministic"') || det !== undefined));
    info = { kind: "inputs", value };
  }

  const args: string[] = [];
  const repo = input("repo").trim();
  args.push("--repo", at(repo || "."));
  const base = input("base").trim();
  if (base) args.push("--base", base);
  const outDir = at(input("out").trim() || join(temp, "autofix-reports"));
  args.push("--out", outDir);
  const sandbox = input("sandbox").trim();
  if (sandbox) args.push("--sandbox", sandbox);
  const githubRepo = input("github-repo").trim();
  if (githubRepo) args.push("--github-repo", githubRepo);
  const dryRun = bool("dry-run", input("dry-run"), problems) === true;
  if (dryRun) args.push("--dry-run");
  for (const [name, key] of BUDGET_INPUTS) {
    const v = input(name).trim();
    if (!v) continue;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (name === "max-turns" && !Number.isInteger(n)))
      problems.push(
        `input "${name}" must be a positive ${name === "max-turns" ? "whole " : ""}number; got ${JSON.stringify(v)}`,
      );
    else args.push("--budget", `${key}=${v}`);
  }

  const publish = bool("publish", input("publish"), problems) ?? true;
  const token = input("github-token").trim();
  const runEnv: Record<string, string | undefined> = {
    // autofix run reads the token from GITHUB_TOKEN or GH_TOKEN: only the input's.
    GITHUB_TOKEN: token || undefined,
    GH_TOKEN: undefined,
  };
  if (!publish) {
    // The token still reads an Actions url's logs; a dry run publishes nothing.
    if (token && !dryRun) args.push("--dry-run");
    notes.push("publish is false: nothing is pushed or opened; the fix stays on the runner");
  }
  if (publish && !token) notes.push('no "github-token": nothing is pushed or opened');
  const key = input("anthropic-api-key").trim();
  if (key) runEnv.ANTHROPIC_API_KEY = key;
  const model = input("model").trim();
  if (model) runEnv.AUTOFIX_MODEL = model;
  if (problems.length) return { ok: false, problems };
  return { ok: true, plan: { info, args, env: runEnv, outDir, notes } };
}

/** What `autofix run` printed at its end, as the action's outputs. Pure. */
export interface RunOutputs {
  status: Outcome | "invalid" | "error";
  "exit-code": string;
  branch: string;
  "fix-sha": string;
  "pr-url": string;
  pushed: string;
  "report-path": string;
}

const LABEL_TO_OUTCOME = new Map<string, Outcome>(
  Object.entries(OUTCOME_LABEL).map(([k, v]) => [v, k as Outcome]),
);

/** Read the run's summary lines (see src/cli/run/summary.ts) into the outputs. Pure. */
export function outputsFromRun(lines: readonly string[], exitCode: number): RunOutputs {
  const out: RunOutputs = {
    status: exitCode === EXIT.badInput ? "invalid" : "error",
    "exit-code": String(exitCode),
    branch: "",
    "fix-sha": "",
    "pr-url": "",
    pushed: "false",
    "report-path": "",
  };
  for (const line of lines) {
    let m = /^Status: (.+?) \(exit \d+\)/.exec(line);
    if (m) {
      const outcome = LABEL_TO_OUTCOME.get(m[1]!);
      if (outcome) out.status = outcome;
      continue;
    }
    m = /^ {2}fix: +branch (\S+) at ([0-9a-f]{7,40})/.exec(line);
    if (m) {
      out.branch = m[1]!;
      out["fix-sha"] = m[2]!;
      continue;
    }
    m = /^ {2}pushed: +(\S+) at [0-9a-f]+ to /.exec(line);
    if (m) {
      out.branch = m[1]!;
      out.pushed = "true";
      continue;
    }
    m = /^ {2}pull request: +(https?:\/\/\S+)/.exec(line);
    if (m) {
      out["pr-url"] = m[1]!;
      continue;
    }
    m = /^Report: (.+)$/.exec(line);
    if (m) out["report-path"] = m[1]!.trim();
  }
  return out;
}

/** `name=value` lines for $GITHUB_OUTPUT; a value with a newline uses the heredoc form. Pure. */
export function githubOutputText(values: Record<string, string>, delimiter: string): string {
  return Object.entries(values)
    .map(([k, v]) => (/[\r\n]/.test(v) ? `${k}<<${delimiter}\n${v}\n${delimiter}\n` : `${k}=${v}\n`))
    .join("");
}

/** The job summary is capped by GitHub at 1 MiB per step. */
export const SUMMARY_MAX_BYTES = 1_000_000;

/** The job summary: the outcome as a table, then the report. Pure; redacted. */
export function summaryMarkdown(o: RunOutputs, report: string | null, problems: string[] = []): string {
  const label =
    o.status in OUTCOME_LABEL
      ? OUTCOME_LABEL[o.status as Outcome]
      : o.status === "invalid"
        ? "Not started"
        : "Error";
  const cell = (s: string) => (s ? `\`${s.replace(/[`|\r\n]/g, " ")}\`` : "none");
  const lines = [
    `## Autofix: ${label}`,
    "",
    "| | |",
    "| --- | --- |",
    `| status | ${o.status} (exit ${o["exit-code"]}) |`,
    `| fix branch | ${cell(o.branch)}${o["fix-sha"] ? ` at ${cell(o["fix-sha"])}` : ""}${o.pushed === "true" ? " (pushed)" : ""} |`,
    `| pull request | ${o["pr-url"] ? o["pr-url"].replace(/[|\s]/g, "") : "none"} |`,
    `| report | ${cell(o["report-path"])} |`,
    "",
  ];
  if (problems.length)
    lines.push("Nothing ran:", "", ...problems.map((p) => `- ${p.replace(/[\r\n]+/g, " ")}`), "");
  let text = lines.join("\n");
  if (report) {
    const room = SUMMARY_MAX_BYTES - Buffer.byteLength(text) - 200;
    const clipped =
      Buffer.byteLength(report) > room
        ? `${Buffer.from(report).subarray(0, room).toString("utf8")}\n\n_(report clipped; the full report is in the artifact)_`
        : report;
    text += `\n${clipped}\n`;
  }
  return redact(text);
}

const SPEC: CommandSpec = {
  usage: "autofix action",
  summary:
    "the GitHub Action's entry point: runs autofix run from the action's INPUT_* variables, then writes its outputs to $GITHUB_OUTPUT and the report to $GITHUB_STEP_SUMMARY",
  notes: [
    `Inputs (environment): ${Object.values(ACTION_INPUTS).join(", ")}.`,
    `Outputs: status, exit-code, branch, fix-sha, pr-url, pushed, report-path. Request inputs use the info.json fields (${INFO_JSON_FIELDS.join(", ")}), or INPUT_INFO_JSON names a file.`,
    "Exit code: autofix run's (0 success, 1 failed, 2 bad input, 3 partial).",
  ],
};

export interface ActionCommandDeps {
  /** The `autofix run` to call (tests may inject one). */
  run?: CliCommand;
}

export function createActionCommand(deps: ActionCommandDeps = {}): CliCommand {
  const run = deps.run ?? runLocalCommand;
  return {
    name: ["action"],
    usage: SPEC.usage,
    summary: SPEC.summary,
    async run(args, io) {
      const parsed = parseCommand(SPEC, args, io);
      if (typeof parsed === "number") return parsed;
      for (const name of ["INPUT_GITHUB_TOKEN", "INPUT_ANTHROPIC_API_KEY"]) {
        const v = io.env[name]?.trim();
        if (v) redactor.addSecret(v);
      }
      const finish = async (o: RunOutputs, report: string | null, problems: string[] = []) => {
        await writeResults(io, o, report, problems);
        return Number(o["exit-code"]);
      };
      const planned = planAction(io.env);
      if (!planned.ok) {
        io.err(
          `autofix action: cannot start (${planned.problems.length} problem${planned.problems.length > 1 ? "s" : ""}):`,
        );
        for (const p of planned.problems) io.err(redact(`  - ${p}`));
        return finish(outputsFromRun([], EXIT.badInput), null, planned.problems);
      }
      const plan = planned.plan;
      for (const n of plan.notes) io.out(`note: ${n}`);
      let infoPath: string;
      if (plan.info.kind === "file") infoPath = plan.info.path;
      else {
        // Outside the checkout, readable by this user only.
        const dir = await mkdtemp(join(io.env.RUNNER_TEMP || tmpdir(), "autofix-action-"));
        infoPath = join(dir, "info.json");
        await writeFile(infoPath, `${JSON.stringify(plan.info.value, null, 2)}\n`, { mode: 0o600 });
      }
      await mkdir(plan.outDir, { recursive: true });

      const lines: string[] = [];
      const errors: string[] = [];
      const runIO: CliIO = {
        out: (l) => {
          lines.push(l);
          io.out(l);
        },
        err: (l) => {
          errors.push(l);
          io.err(l);
        },
        env: withEnv(io.env, plan.env),
        cwd: io.cwd,
      };
      const code = await run.run([infoPath, ...plan.args], runIO);
      const outputs = outputsFromRun(lines, code);
      let report: string | null = null;
      if (outputs["report-path"]) report = await readFile(outputs["report-path"], "utf8").catch(() => null);
      const problems =
        code === EXIT.badInput ? errors.filter((l) => /^\s+- /.test(l)).map((l) => l.trim().slice(2)) : [];
      return finish(outputs, report, problems);
    },
  };
}

function withEnv(base: NodeJS.ProcessEnv, extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  // The action's own inputs (the token and the key among them) are not autofix run's business.
  for (const k of Object.keys(env)) if (k.startsWith("INPUT_")) delete env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Outputs to $GITHUB_OUTPUT and the summary to $GITHUB_STEP_SUMMARY (each when the runner set it). */
async function writeResults(
  io: CliIO,
  o: RunOutputs,
  report: string | null,
  problems: string[],
): Promise<void> {
  const values = Object.fromEntries(Object.entries(o).map(([k, v]) => [k, redact(v)]));
  const outFile = io.env.GITHUB_OUTPUT;
  if (outFile)
    await appendFile(outFile, githubOutputText(values, `AUTOFIX_${randomBytes(12).toString("hex")}`));
  else for (const [k, v] of Object.entries(values)) io.out(`output ${k}=${v}`);
  const summaryFile = io.env.GITHUB_STEP_SUMMARY;
  if (summaryFile) await appendFile(summaryFile, summaryMarkdown(o, report, problems));
}

export const actionCommand = createActionCommand();
