import type { z } from "zod";

/** Render a zod issue path as a person would write it: `budgets.fix_minutes`, `pool_rules[2].pool`. */
export function pathToString(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = input;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/**
 * One plain-words line per zod issue, naming the field and, where it helps, what was given.
 * `input` is the raw value that was parsed, so a message can say what it got.
 */
export function issueLines(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((issue) => {
    const where = pathToString(issue.path);
    const prefix = where ? `\`${where}\`: ` : "";
    if (issue.code === "unrecognized_keys") {
      return `${prefix}unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `\`${k}\``).join(", ")}`;
    }
    if (issue.code === "invalid_type") {
      const got = valueAt(input, issue.path);
      if (got === undefined) return `${prefix}is required (${issue.expected})`;
      return `${prefix}must be ${article(issue.expected)}, got ${describe(got)}`;
    }
    return `${prefix}${issue.message}`;
  });
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}
