import { POOL_NAMES } from "../config/pools.js";

/**
 * The `/autofix` command grammar, a pure function of the comment text.
 *
 *   /autofix [--flaky] [--test PATH] [--logs URL] [--pool NAME] [free text prompt]
 *   /autofix status | cancel | retry | help | why
 *
 * A command counts only at the start of a line, outside fenced code blocks, indented code,
 * block quotes and HTML comments. Only the first command in a comment is taken.
 */

export type Command =
  | {
      kind: "run";
      prompt: string;
      deterministic: boolean;
      /** --allow-test-changes: the fix may change tests and their configuration. */
      allowTestChanges?: boolean;
      existingTestPath?: string;
      url?: string;
      pool?: string;
    }
  | { kind: "status" | "cancel" | "retry" | "help" | "why" }
  | { kind: "invalid"; error: string };

export const COMMAND = "/autofix";

export const USAGE = [
  "Usage:",
  "```",
  "/autofix [options] [what to fix]   start a job on this issue or pull request",
  "  --flaky, --nd           the failure is intermittent: stress-test it, require 5/5 passes",
  "  --test PATH             use an existing reproduction test (skips the reproduction phase)",
  "  --logs URL              GitHub Actions run or job URL with the failing logs",
  `  --pool NAME             hardware pool (${POOL_NAMES.join(", ")})`,
  "  --allow-test-changes    the fix may change tests and their config (skips, deleted tests, pytest or CI config); refused otherwise",
  "/autofix status          refresh the status comment",
  "/autofix cancel          stop the running or queued job",
  "/autofix retry           run the last request again",
  "/autofix why             why Autofix did (or did not) act here: its recorded decisions",
  "/autofix help            show this help",
  "```",
].join("\n");

const ACTIONS_URL =
  /^https?:\/\/[^\s/]+\/[^\s/]+\/[^\s/]+\/(?:actions\/runs\/\d+|runs\/\d+|pull\/\d+\/checks)\S*$/;

/** Lines of the comment that are prose: code blocks, quotes and HTML comments removed. */
export function proseLines(body: string): string[] {
  const withoutComments = body.replace(/<!--[\s\S]*?(?:-->|$)/g, "");
  const out: string[] = [];
  let fence: string | null = null;
  for (const raw of withoutComments.split(/\r?\n/)) {
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
    if (fence) {
      if (fenceMatch && fenceMatch[1]![0] === fence[0] && fenceMatch[1]!.length >= fence.length) fence = null;
      continue;
    }
    if (fenceMatch) {
      fence = fenceMatch[1]!;
      continue;
    }
    if (/^( {4,}|\t)/.test(raw)) continue; // indented code
    if (/^ {0,3}>/.test(raw)) continue; // block quote
    out.push(raw);
  }
  return out;
}

function tokenize(text: string): string[] | { error: string } {
  const tokens: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null = re.exec(text);
  while (m) {
    tokens.push(m[1] ?? m[2] ?? m[3]!);
    m = re.exec(text);
  }
  if ((text.match(/"/g)?.length ?? 0) % 2 === 1) return { error: "a quote is not closed" };
  return tokens;
}

/** Parse the first `/autofix` command in a comment body; null when there is none. */
export function parseCommand(body: string): Command | null {
  const line = proseLines(body).find((l) => new RegExp(`^ {0,3}${COMMAND}(?:\\s|$)`).test(l));
  if (line === undefined) return null;
  const rest = line.trim().slice(COMMAND.length).trim();
  const tokens = tokenize(rest);
  if (!Array.isArray(tokens)) return { kind: "invalid", error: tokens.error };

  const first = tokens[0]?.toLowerCase();
  // `why` alone asks for the recorded decisions; "/autofix why does X fail ..." stays a prompt.
  if (first === "why" && tokens.length === 1) return { kind: "why" };
  if (first === "status" || first === "cancel" || first === "retry" || first === "help") {
    if (tokens.length > 1) return { kind: "invalid", error: `\`${first}\` takes no arguments` };
    return { kind: first };
  }

  let deterministic = true;
  let allowTestChanges = false;
  let existingTestPath: string | undefined;
  let url: string | undefined;
  let pool: string | undefined;
  const words: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const value = () => {
      const v = tokens[i + 1];
      if (v === undefined || v.startsWith("--")) return undefined;
      i++;
      return v;
    };
    if (t === "--flaky" || t === "--nd" || t === "--non-deterministic") deterministic = false;
    else if (t === "--deterministic") deterministic = true;
    else if (t === "--allow-test-changes") allowTestChanges = true;
    else if (t === "--test") {
      const v = value();
      if (!v) return { kind: "invalid", error: "`--test` needs a path" };
      if (v.startsWith("/") || v.split(/[\\/]/).includes("..")) {
        return { kind: "invalid", error: `\`--test\` must be a path inside the repository, got \`${v}\`` };
      }
      existingTestPath = v;
    } else if (t === "--logs") {
      const v = value();
      if (!v) return { kind: "invalid", error: "`--logs` needs a GitHub Actions run or job URL" };
      if (!ACTIONS_URL.test(v))
        return { kind: "invalid", error: `\`--logs\` must be a GitHub Actions run or job URL, got \`${v}\`` };
      url = v;
    } else if (t === "--pool") {
      const v = value();
      if (!v) return { kind: "invalid", error: "`--pool` needs a pool name" };
      if (!POOL_NAMES.includes(v))
        return { kind: "invalid", error: `unknown pool \`${v}\` (known: ${POOL_NAMES.join(", ")})` };
      pool = v;
    } else if (t.startsWith("--")) {
      return { kind: "invalid", error: `unknown option \`${t}\`` };
    } else if (url === undefined && ACTIONS_URL.test(t)) {
      url = t; // a bare Actions URL in the text is the log source
    } else {
      words.push(t);
    }
  }
  return {
    kind: "run",
    prompt: words.join(" "),
    deterministic,
    ...(allowTestChanges ? { allowTestChanges } : {}),
    ...(existingTestPath !== undefined ? { existingTestPath } : {}),
    ...(url !== undefined ? { url } : {}),
    ...(pool !== undefined ? { pool } : {}),
  };
}

/** The first GitHub Actions URL anywhere in a text (issue bodies often paste one). */
export function findActionsUrl(text: string): string | undefined {
  for (const m of text.matchAll(/https?:\/\/[^\s)<>\]]+/g)) {
    if (ACTIONS_URL.test(m[0])) return m[0];
  }
  return undefined;
}
