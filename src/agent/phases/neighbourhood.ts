/**
 * A fix may not weaken the tests around the reproduction: no new skip, xfail or disable
 * markers, no deleted or renamed test files, no change to the test configuration (pytest's,
 * CTest's, the CI workflows). Pure over the fix's diff (name-status, added and removed lines,
 * and the old and new text of the few configuration files whose test section matters);
 * `parseNameStatus` and `parsePatch` read git's output into it.
 */

export interface DiffEntry {
  /** git's status letter: A, M, D, R, C, T. */
  status: string;
  path: string;
  /** The old path of a rename or copy. */
  from?: string;
}

export interface FixDiff {
  entries: DiffEntry[];
  /** Added lines by path (the new path). */
  added: Record<string, string[]>;
  /** Removed lines by path (the old path). */
  removed: Record<string, string[]>;
  /** Old and new text of setup.cfg, tox.ini and pyproject.toml files the diff touches. */
  texts?: Record<string, { old: string | null; new: string | null }>;
}

/** Markers that skip, expect to fail or disable a test, by framework. */
const MARKERS: Array<[RegExp, string]> = [
  [/\bpytest\.mark\.(skip|skipif|xfail|flaky)\b/, "a pytest skip/xfail marker"],
  [/\bpytest\.(skip|xfail|importorskip)\s*\(/, "a pytest skip/xfail call"],
  [
    /\bunittest\.(skip|skipIf|skipUnless|expectedFailure)\b|@(skip|skipIf|skipUnless|expectedFailure)\b/,
    "a unittest skip marker",
  ],
  [/\b(SkipTest|skipTest)\b/, "a unittest skip"],
  [/\bGTEST_SKIP\b/, "GTEST_SKIP"],
  [/\bDISABLED_\w+/, "a DISABLED_ test"],
  [
    /\b(it|test|describe|suite|context|bench)\.(skip|only|todo|fixme|fails|skipIf|runIf)\b/,
    "a skipped, focused or inverted JavaScript test",
  ],
  [/(^|[^.\w$])(xit|xdescribe|xtest|xcontext|fit|fdescribe)\s*\(/, "a skipped or focused JavaScript test"],
  [/#\[\s*ignore\b/, "a Rust #[ignore]"],
  [/\bt\.(Skip|SkipNow|Skipf)\s*\(/, "a Go t.Skip"],
  [/@(Disabled|Ignore)\b/, "a JUnit @Disabled/@Ignore"],
  [/\[!(mayfail|shouldfail)\]|\bdoctest::(skip|may_fail|should_fail)\b/, "a Catch2/doctest skip tag"],
  [/\bWILL_FAIL\b|\bDISABLED\s+(ON|TRUE|YES|1)\b/, "a CTest WILL_FAIL/DISABLED property"],
];

const CMAKE_TEST_LINE =
  /\b(add_test|enable_testing|gtest_discover_tests|gtest_add_tests|catch_discover_tests|doctest_discover_tests|set_tests_properties)\s*\(|\badd_subdirectory\s*\([^)]*test/i;

/** Is this a test file (deleting or renaming it removes tests)? Pure. */
export function isTestFile(p: string): boolean {
  const parts = p.toLowerCase().split("/");
  const base = parts.at(-1) ?? "";
  if (parts.slice(0, -1).some((d) => ["test", "tests", "__tests__", "spec", "specs", "testing"].includes(d)))
    return true;
  return (
    /^test_.*\.py$|_test\.py$|^tests?\.py$/.test(base) ||
    /_test\.go$/.test(base) ||
    /\.(test|spec)\.[cm]?[jt]sx?$/.test(base) ||
    /(^test_|_test|_tests|_unittest)\.(c|cc|cpp|cxx|h|hpp)$/.test(base) ||
    /^test.*\.(c|cc|cpp|cxx)$/.test(base) ||
    /test\.(java|kt|cs)$|tests\.(java|kt|cs)$/.test(base) ||
    /_spec\.rb$|_test\.rb$/.test(base) ||
    /^test.*\.(sh|bats)$|\.bats$/.test(base)
  );
}

/** Test configuration files a fix may not change at all. Pure. */
export function isTestConfig(p: string): string | null {
  const lower = p.toLowerCase();
  const base = lower.split("/").at(-1) ?? "";
  if (/^\.github\/workflows\//.test(lower)) return "a CI workflow file";
  if (base === "pytest.ini" || base === ".pytest.ini") return "pytest.ini";
  if (base === "conftest.py") return "a conftest.py";
  if (base === "ctesttestfile.cmake" || base === "ctestcustom.cmake") return "a CTest file";
  if (/^(jest|vitest|karma|playwright)\.config\.|^vitest\.workspace\.|^\.mocharc/.test(base))
    return "a JavaScript test runner config";
  if (base === "noxfile.py") return "noxfile.py";
  return null;
}

/** The pytest sections of an ini-like or TOML file, as text (for comparison). Pure. */
export function pytestSections(file: string, text: string | null): string {
  if (text === null) return "";
  const base = file.toLowerCase().split("/").at(-1) ?? "";
  const wanted = (header: string) => {
    const h = header.trim().toLowerCase();
    if (base === "setup.cfg") return h === "[tool:pytest]";
    if (base === "tox.ini") return h === "[pytest]" || h.startsWith("[testenv");
    if (base === "pyproject.toml") return /^\[\[?tool\.pytest(\.|\])/.test(h);
    return false;
  };
  const out: string[] = [];
  let keep = false;
  for (const line of text.split("\n")) {
    if (/^\s*\[/.test(line)) keep = wanted(line);
    if (keep && line.trim() && !/^\s*[#;]/.test(line)) out.push(line.trim());
  }
  return out.join("\n");
}

/** Files whose pytest section `pytestSections` reads. */
export function hasPytestSection(p: string): boolean {
  return /(^|\/)(setup\.cfg|tox\.ini|pyproject\.toml)$/i.test(p);
}

/**
 * What in a fix's diff weakens the tests: one line per finding, empty when nothing does.
 * Pure.
 */
export function weakenings(diff: FixDiff): string[] {
  const found: string[] = [];
  for (const e of diff.entries) {
    const from = e.from ?? e.path;
    if (e.status.startsWith("D") && isTestFile(e.path)) found.push(`deletes the test file ${e.path}`);
    if (e.status.startsWith("R") && isTestFile(from))
      found.push(`renames the test file ${from} to ${e.path}`);
    for (const p of new Set([e.path, from])) {
      const kind = isTestConfig(p);
      if (kind) found.push(`changes ${kind} (${p})`);
    }
    if (/(^|\/)(CMakeLists\.txt|[^/]+\.cmake)$/i.test(e.path)) {
      const lines = [...(diff.added[e.path] ?? []), ...(diff.removed[from] ?? [])];
      const hit = lines.find((l) => CMAKE_TEST_LINE.test(l));
      if (hit) found.push(`changes the CMake test list in ${e.path} (${hit.trim().slice(0, 80)})`);
    }
    if (hasPytestSection(e.path) || hasPytestSection(from)) {
      const t = diff.texts?.[e.path] ?? diff.texts?.[from];
      if (!t) found.push(`changes ${e.path}, which may hold pytest settings`);
      else if (pytestSections(from, t.old) !== pytestSections(e.path, t.new))
        found.push(`changes the pytest settings in ${e.path}`);
    }
  }
  for (const [p, lines] of Object.entries(diff.added)) {
    for (const l of lines) {
      const m = MARKERS.find(([re]) => re.test(l));
      if (m) {
        found.push(`adds ${m[1]} in ${p}: ${l.trim().slice(0, 100)}`);
        break;
      }
    }
  }
  return [...new Set(found)];
}

/** The refusal the model and the report get. Pure. */
export function weakeningReason(found: readonly string[]): string {
  return `the fix weakens the tests instead of fixing the code: ${found.join("; ")}. A fix may not add skip, xfail or disable markers, delete or rename tests, or change test configuration (pytest.ini, conftest.py, [tool:pytest], CMake test lists, CI workflows); change the code under test instead`;
}

/** `git diff --name-status -z -M` output. Pure. */
export function parseNameStatus(z: string): DiffEntry[] {
  const parts = z.split("\0").filter((p, i, a) => p !== "" || i < a.length - 1);
  const out: DiffEntry[] = [];
  for (let i = 0; i < parts.length; ) {
    const status = parts[i++] ?? "";
    if (!status) continue;
    if (/^[RC]/.test(status)) {
      const from = parts[i++] ?? "";
      const to = parts[i++] ?? "";
      out.push({ status, path: to, from });
    } else out.push({ status, path: parts[i++] ?? "" });
  }
  return out;
}

/**
 * Added and removed lines by file from `git diff -U0 --no-renames --src-prefix=a/
 * --dst-prefix=b/` output. Pure.
 */
export function parsePatch(patch: string): {
  added: Record<string, string[]>;
  removed: Record<string, string[]>;
} {
  const added: Record<string, string[]> = {};
  const removed: Record<string, string[]> = {};
  let oldPath = "";
  let newPath = "";
  let inHunk = false;
  const unq = (s: string) => (s.startsWith('"') ? s.slice(1, -1) : s);
  for (const line of patch.split("\n")) {
    if (line.startsWith("diff --git ")) {
      inHunk = false;
      continue;
    }
    if (!inHunk && line.startsWith("--- ")) {
      const p = unq(line.slice(4));
      oldPath = p === "/dev/null" ? "" : p.replace(/^"?a\//, "");
      continue;
    }
    if (!inHunk && line.startsWith("+++ ")) {
      const p = unq(line.slice(4));
      newPath = p === "/dev/null" ? "" : p.replace(/^"?b\//, "");
      continue;
    }
    if (line.startsWith("@@")) {
      inHunk = true;
      continue;
    }
    if (!inHunk) continue;
    const push = (into: Record<string, string[]>, p: string) => {
      into[p] = [...(into[p] ?? []), line.slice(1)];
    };
    if (line.startsWith("+") && newPath) push(added, newPath);
    else if (line.startsWith("-") && oldPath) push(removed, oldPath);
  }
  return { added, removed };
}
