import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import type { FixRequest } from "./fix-request.js";

/**
 * The original framework's input file, unchanged: `deterministic`, `url`, `prompt`, `raw-logs`,
 * `existing-test-path`. Every rule violation is reported at once, in plain words.
 */
export const INFO_JSON_FIELDS = [
  "deterministic",
  "url",
  "prompt",
  "raw-logs",
  "existing-test-path",
  "allow-test-changes",
] as const;

export type InfoJsonResult =
  | { ok: true; request: FixRequest; notes: string[] }
  | { ok: false; problems: string[]; notes: string[] };

const ACTIONS_URL = /^https?:\/\/[^/\s]+\/[^/\s]+\/[^/\s]+\/(actions\/runs\/\d+|runs\/\d+|pull\/\d+\/checks)/;

export interface InfoJsonOptions {
  /** Repository root that `existing-test-path` is relative to; the check is skipped when absent. */
  repoRoot?: string;
  /**
   * Without a checkout (the push trigger reads the file through the API): `existing-test-path`
   * must at least be a relative path that stays inside the repository.
   */
  relativeOnly?: boolean;
}

/** The largest info.json read (a request is a few lines; the original's raw-logs can be long). */
export const INFO_JSON_MAX_BYTES = 256 * 1024;

/** Validate an already-parsed info.json value. */
export function validateInfoJson(raw: unknown, opts: InfoJsonOptions = {}): InfoJsonResult {
  const problems: string[] = [];
  const notes: string[] = [];
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return {
      ok: false,
      problems: [`info.json must be a JSON object with the fields ${INFO_JSON_FIELDS.join(", ")}`],
      notes,
    };
  }
  const obj = raw as Record<string, unknown>;

  for (const key of Object.keys(obj)) {
    if (!(INFO_JSON_FIELDS as readonly string[]).includes(key)) {
      const hint = INFO_JSON_FIELDS.find(
        (f) => f.replace(/[-_]/g, "") === key.replace(/[-_]/g, "").toLowerCase(),
      );
      notes.push(`unknown field "${key}" ignored${hint ? ` (did you mean "${hint}"?)` : ""}`);
    }
  }

  const det = obj.deterministic;
  if (det === undefined) {
    problems.push(
      '"deterministic" is required: true if the failure happens every time, false if it is intermittent',
    );
  } else if (typeof det === "string") {
    problems.push(
      `"deterministic" must be true or false without quotes; got the string ${JSON.stringify(det)} (the original run.sh misread this and always took the non-deterministic path)`,
    );
  } else if (typeof det !== "boolean") {
    problems.push(`"deterministic" must be true or false; got ${JSON.stringify(det)}`);
  }

  const prompt = obj.prompt;
  if (prompt === undefined || (typeof prompt === "string" && prompt.trim() === "")) {
    problems.push('"prompt" is required: describe what to fix or improve');
  } else if (typeof prompt !== "string") {
    problems.push(`"prompt" must be text; got ${JSON.stringify(prompt)}`);
  }

  const str = (key: string): string | undefined => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      problems.push(`"${key}" must be text; got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v.trim() === "" ? undefined : v;
  };
  const url = str("url");
  const rawLogs = str("raw-logs");
  const existing = str("existing-test-path");

  if (url === undefined && rawLogs === undefined) {
    problems.push(
      'give a log source: "url" (a GitHub Actions run or job URL) or "raw-logs" (pasted error output); both are empty',
    );
  }
  if (url !== undefined && !ACTIONS_URL.test(url.trim())) {
    problems.push(
      `"url" must be a GitHub Actions run or job URL such as https://github.com/OWNER/REPO/actions/runs/123; got ${JSON.stringify(url)}`,
    );
  }
  if (url !== undefined && rawLogs !== undefined) {
    notes.push(
      'both "url" and "raw-logs" are given: the logs are fetched from "url" and "raw-logs" is not used',
    );
  }

  let existingTestPath: string | undefined;
  if (existing !== undefined) {
    if (opts.repoRoot) {
      const root = resolve(opts.repoRoot);
      const full = isAbsolute(existing) ? existing : resolve(root, existing);
      const rel = relative(root, full);
      if (rel.startsWith("..") || isAbsolute(rel)) {
        problems.push(
          `"existing-test-path" must be inside the repository (${root}); got ${JSON.stringify(existing)}`,
        );
      } else if (!existsSync(full)) {
        problems.push(`"existing-test-path" does not exist: ${full}`);
      } else if (!statSync(full).isFile() && !existsSync(resolve(full, "run_test.sh"))) {
        // A folder is a test folder (what phase 1 writes) when it holds run_test.sh.
        problems.push(`"existing-test-path" must be a test file or a folder holding run_test.sh: ${full}`);
      } else {
        existingTestPath = rel;
      }
    } else if (
      opts.relativeOnly &&
      (isAbsolute(existing) || existing.startsWith("~") || existing.split(/[\\/]/).includes(".."))
    ) {
      problems.push(
        `"existing-test-path" must be a path relative to the repository's root, inside it; got ${JSON.stringify(existing)}`,
      );
    } else {
      existingTestPath = existing;
    }
    if (existingTestPath !== undefined)
      notes.push("an existing test is given: the reproduction phase is skipped");
  }

  const allow = obj["allow-test-changes"];
  if (allow !== undefined && allow !== null && typeof allow !== "boolean")
    problems.push(`"allow-test-changes" must be true or false; got ${JSON.stringify(allow)}`);
  if (allow === true)
    notes.push("allow-test-changes: the fix may change tests and their configuration (normally refused)");

  if (problems.length > 0) return { ok: false, problems, notes };
  const request: FixRequest = {
    deterministic: det as boolean,
    prompt: (prompt as string).trim(),
    ...(url !== undefined ? { url: url.trim() } : {}),
    ...(rawLogs !== undefined && url === undefined ? { rawLogs } : {}),
    ...(existingTestPath !== undefined ? { existingTestPath } : {}),
    ...(allow === true ? { allowTestChanges: true } : {}),
  };
  return { ok: true, request, notes };
}

/** Parse and validate the text of an info.json (`source` names it in the problems). */
export function parseInfoJsonText(text: string, source: string, opts: InfoJsonOptions = {}): InfoJsonResult {
  if (Buffer.byteLength(text, "utf8") > INFO_JSON_MAX_BYTES)
    return {
      ok: false,
      problems: [
        `${source} is larger than ${INFO_JSON_MAX_BYTES / 1024} KB; put long logs behind a "url" instead`,
      ],
      notes: [],
    };
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    return { ok: false, problems: [`${source} is not valid JSON: ${(err as Error).message}`], notes: [] };
  }
  return validateInfoJson(raw, opts);
}

/** Read and validate an info.json file. */
export function loadInfoJson(path: string, opts: InfoJsonOptions = {}): InfoJsonResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return {
      ok: false,
      problems: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`],
      notes: [],
    };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`${path} is not valid JSON: ${(err as Error).message}`], notes: [] };
  }
  return validateInfoJson(raw, opts);
}
