import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { RepoConfig } from "../config/repo-config.js";
import type { FixRequest } from "../contracts/fix-request.js";
import { fenceAsData } from "../shared/sanitize.js";

/**
 * Prompts live as markdown in `prompts/` at the package root, so they can be read and
 * reviewed as documents. Loading is the shell; rendering is pure.
 */

export const PROMPT_FILES = [
  "system",
  "reproduce-deterministic",
  "reproduce-nondeterministic",
  "fix",
  "build-note",
  "test-note",
] as const;
export type PromptName = (typeof PROMPT_FILES)[number];
export type PromptTemplates = Record<PromptName, string>;

/** Walk up from a module URL to the folder holding package.json (src/ and dist/src/ alike). */
export async function findPackageRoot(fromUrl: string = import.meta.url): Promise<string> {
  let dir = path.dirname(fileURLToPath(fromUrl));
  for (;;) {
    try {
      await access(path.join(dir, "package.json"));
      return dir;
    } catch {
      const parent = path.dirname(dir);
      if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(fromUrl)}`);
      dir = parent;
    }
  }
}

let cached: Promise<PromptTemplates> | undefined;

/** Read every prompt file once per process. */
export function loadPrompts(root?: string): Promise<PromptTemplates> {
  if (root) return readPrompts(root);
  cached ??= findPackageRoot().then(readPrompts);
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}

async function readPrompts(root: string): Promise<PromptTemplates> {
  const entries = await Promise.all(
    PROMPT_FILES.map(
      async (name) => [name, await readFile(path.join(root, "prompts", `${name}.md`), "utf8")] as const,
    ),
  );
  return Object.fromEntries(entries) as PromptTemplates;
}

/**
 * Replace `{{name}}` placeholders in one pass (values are never rescanned, so a value holding
 * `{{...}}` stays literal). A placeholder without a value is a programming error.
 */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{([a-z_]+)\}\}/g, (_m, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`prompt placeholder {{${name}}} has no value`);
    return v;
  });
}

/** The request as the model sees it: the person's prompt and log source, fenced as data. */
function describeRequest(request: FixRequest): string {
  const lines = [fenceAsData("request from the person who asked for this fix", request.prompt)];
  if (request.url) lines.push(`Log source: ${request.url}`);
  const ci = ciCommandNote(request);
  if (ci) lines.push(ci);
  return lines.join("\n\n");
}

/**
 * The command the failed CI step ran, as the starting point of the reproduction: read from the
 * workflow at the run's commit, fenced as data (it is the repository's text). Pure.
 */
export function ciCommandNote(request: FixRequest): string {
  const c = request.ciCommand;
  if (!c) return "";
  const where = [
    c.timeoutMinutes ? `the job's timeout was ${c.timeoutMinutes} minutes` : "",
    c.workingDirectory ? `it ran in ${c.workingDirectory}` : "",
  ].filter(Boolean);
  return [
    `The failed CI step ran this command (${c.source}${where.length ? `; ${where.join(", ")}` : ""}). Start the reproduction from it: run it, or the narrowest part of it that shows the failure.`,
    fenceAsData("command the CI step ran", c.run),
  ].join("\n");
}

function describeFailureContext(failureContext: string): string {
  const text = failureContext.trim();
  return text ? fenceAsData("log excerpt", text) : "(no log excerpt was available)";
}

function buildNote(t: PromptTemplates, buildCommand: string): string {
  return buildCommand ? renderTemplate(t["build-note"], { build_command: buildCommand }) : "";
}

/** The repository's usual test command (`commands.test`), when it has one. */
function testNote(t: PromptTemplates, testCommand: string): string {
  const command = testCommand.trim();
  return command ? renderTemplate(t["test-note"], { test_command: command }) : "";
}

export function systemPrompt(t: PromptTemplates): string {
  return t.system.trim();
}

export function reproducePrompt(
  t: PromptTemplates,
  args: {
    request: FixRequest;
    failureContext: string;
    testDir: string;
    config: RepoConfig;
  },
): string {
  const { request, config } = args;
  const template = request.deterministic ? t["reproduce-deterministic"] : t["reproduce-nondeterministic"];
  return renderTemplate(template, {
    test_dir: args.testDir,
    runs: String(
      request.deterministic ? config.stability.deterministic_failures : config.stability.stress_runs,
    ),
    build_note: buildNote(t, config.commands.build),
    test_note: testNote(t, config.commands.test),
    request: describeRequest(request),
    failure_context: describeFailureContext(args.failureContext),
  }).trim();
}

export function fixPrompt(
  t: PromptTemplates,
  args: {
    request: FixRequest;
    failureContext: string;
    testPath: string;
    command: string;
    failureMode: string;
    config: RepoConfig;
  },
): string {
  const { request, config } = args;
  return renderTemplate(t.fix, {
    test_path: args.testPath,
    command: args.command,
    failure_mode: fenceAsData("failure description", args.failureMode),
    kind: request.deterministic
      ? "deterministic (fails every time)"
      : "non-deterministic (fails some of the time)",
    runs: String(
      request.deterministic
        ? config.stability.deterministic_passes
        : config.stability.nondeterministic_passes,
    ),
    test_note: testNote(t, config.commands.test),
    request: describeRequest(request),
    failure_context: describeFailureContext(args.failureContext),
  }).trim();
}
