import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The module structure, checked from the sources (no build, no clock): the layers of the issue
 * "Structure for what comes next", bottom to top, and what importing the agent loads. A static
 * walk of the .ts import statements; packages are followed through their package.json
 * dependencies, which over-approximates what they load, so a pass here is a proof.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SRC = join(ROOT, "src");

/** Bottom to top; folders on one line are one layer and may import each other. */
const LAYERS: readonly string[][] = [
  ["shared"],
  ["contracts"],
  ["config"],
  ["logs", "queue", "status"],
  ["sandbox", "git"],
  ["agent"],
  ["ops"],
  ["publish"],
  ["worker"],
  ["pipeline"],
  ["triggers"],
  ["web"],
  // src/demo (the fake GitHub of `npm run demo`) imports no module of src; it sits with the CLI.
  ["cli", "demo"],
];

interface ImportRef {
  spec: string;
  /** `import type` / `export type`: erased from the JavaScript. */
  typeOnly: boolean;
}

// Statements at the start of a line, so examples in comments (` * import ...`) do not count.
const STATIC_IMPORT =
  /^[ \t]*(?:import|export)(\s+type)?\s+(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?)?\s*from\s*["']([^"']+)["']/gm;
const SIDE_EFFECT_IMPORT = /^[ \t]*import\s*["']([^"']+)["']/gm;
// import("x"): in a type position it is erased, but counting it as loaded errs on the safe side.
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(file: string): ImportRef[] {
  const text = readFileSync(file, "utf8");
  const out: ImportRef[] = [];
  // `import { type A } from "x"` stays `import {} from "x"` under verbatimModuleSyntax: it loads x.
  for (const m of text.matchAll(STATIC_IMPORT)) out.push({ spec: m[2]!, typeOnly: m[1] !== undefined });
  for (const m of text.matchAll(SIDE_EFFECT_IMPORT)) out.push({ spec: m[1]!, typeOnly: false });
  for (const m of text.matchAll(DYNAMIC_IMPORT)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/**
 * The .ts file a relative specifier names (`./x.js` is `./x.ts`); null when there is none, which
 * the type check reports (and a module that does not exist loads nothing).
 */
function resolveRelative(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

const isBuiltin = (spec: string) => spec.startsWith("node:") || builtinModules.includes(spec);
const packageOf = (spec: string) =>
  spec
    .split("/")
    .slice(0, spec.startsWith("@") ? 2 : 1)
    .join("/");
const layerOf = (file: string): number => {
  const top = relative(SRC, file).split("/")[0]!;
  return LAYERS.findIndex((l) => l.includes(top));
};

/** Every module of src a file loads at run time, and the packages they import. */
function runtimeGraph(entry: string): {
  files: Map<string, string | null>;
  packages: Map<string, string>;
  unresolved: string[];
} {
  const files = new Map<string, string | null>([[entry, null]]);
  const packages = new Map<string, string>();
  const unresolved: string[] = [];
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const ref of importsOf(file)) {
      if (ref.typeOnly || isBuiltin(ref.spec)) continue;
      if (!ref.spec.startsWith(".")) {
        if (!packages.has(packageOf(ref.spec))) packages.set(packageOf(ref.spec), file);
        continue;
      }
      const target = resolveRelative(file, ref.spec);
      if (!target) unresolved.push(`${relative(ROOT, file)}: ${ref.spec}`);
      else if (!files.has(target)) {
        files.set(target, file);
        queue.push(target);
      }
    }
  }
  return { files, packages, unresolved };
}

/** The package's own folder as Node finds it from `fromDir` (nested node_modules first). */
function packageDir(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dir === dirname(dir)) return null;
  }
}

/** Every package `name` may load: its dependencies, optional and peer ones too, transitively. */
function packageClosure(name: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  const queue: Array<{ name: string; from: string; chain: string[] }> = [{ name, from: ROOT, chain: [name] }];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
    if (chains.has(item.name)) continue;
    chains.set(item.name, item.chain);
    const dir = packageDir(item.name, item.from);
    if (!dir) continue; // an optional dependency that is not installed loads nothing
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<
      string,
      Record<string, string> | undefined
    >;
    for (const field of ["dependencies", "optionalDependencies", "peerDependencies"]) {
      for (const dep of Object.keys(pkg[field] ?? {})) {
        queue.push({ name: dep, from: dir, chain: [...item.chain, dep] });
      }
    }
  }
  return chains;
}

describe("layers", () => {
  it("no module imports a layer above its own (type-only imports included)", () => {
    const problems: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const own = layerOf(file);
      if (own < 0) {
        problems.push(`${relative(ROOT, file)}: its folder is in no layer; add it to LAYERS`);
        continue;
      }
      for (const ref of importsOf(file)) {
        if (!ref.spec.startsWith(".")) continue;
        const target = resolveRelative(file, ref.spec);
        if (!target?.startsWith(SRC)) continue;
        if (layerOf(target) > own)
          problems.push(`${relative(ROOT, file)} imports ${relative(ROOT, target)}, a layer above`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe("importing the agent", () => {
  const entry = join(SRC, "agent", "index.ts");
  const graph = runtimeGraph(entry);
  const rel = (f: string) => relative(ROOT, f);
  const chainTo = (file: string): string[] => {
    const from = graph.files.get(file);
    return from ? [...chainTo(from), rel(file)] : [rel(file)];
  };

  it("walks the agent's real graph (a check that found nothing would prove nothing)", () => {
    expect(graph.unresolved).toEqual([]);
    expect([...graph.files.keys()].map(rel)).toEqual(
      expect.arrayContaining(["src/agent/index.ts", "src/agent/harness.ts", "src/agent/loop.ts"]),
    );
  });

  it("loads neither ioredis nor bullmq, not even through a package it imports", () => {
    const reached: string[] = [];
    for (const [pkg, importer] of graph.packages) {
      for (const [dep, chain] of packageClosure(pkg)) {
        if (dep === "ioredis" || dep === "bullmq")
          reached.push(`${[...chainTo(importer), ...chain].join(" -> ")}`);
      }
    }
    expect(reached).toEqual([]);
  });

  it("the check itself sees ioredis where it is loaded: the queue layer", () => {
    const queue = runtimeGraph(join(SRC, "queue", "queues.ts"));
    expect([...queue.packages.keys()]).toEqual(expect.arrayContaining(["ioredis", "bullmq"]));
    expect([...packageClosure("bullmq").keys()]).toContain("ioredis");
  });
});
