import { matchesGlob } from "./glob.js";

export interface OwnerRule {
  pattern: string;
  owners: string[];
}

/** Where GitHub looks for CODEOWNERS, in its order. */
export const CODEOWNERS_PATHS = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

export function parseCodeowners(text: string): OwnerRule[] {
  const rules: OwnerRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    const [pattern, ...owners] = line.split(/\s+/);
    if (pattern) rules.push({ pattern, owners: owners.filter((o) => o.startsWith("@") || o.includes("@")) });
  }
  return rules;
}

/** Owners of one path: the last matching rule wins, as on GitHub. */
export function ownersOf(path: string, rules: readonly OwnerRule[]): string[] {
  for (let i = rules.length - 1; i >= 0; i--) {
    if (matchesGlob(path, rules[i]!.pattern)) return rules[i]!.owners;
  }
  return [];
}

/** Owners of a set of changed files, most files first. */
export function ownersOfFiles(paths: readonly string[], rules: readonly OwnerRule[]): string[] {
  const count = new Map<string, number>();
  for (const p of paths) for (const o of ownersOf(p, rules)) count.set(o, (count.get(o) ?? 0) + 1);
  return [...count.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([o]) => o);
}
