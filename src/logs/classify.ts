/**
 * Line-level recognisers for CI logs: the error classes, the failure families and the test-id
 * forms of pytest and GoogleTest. Pure functions over one cleaned line.
 */

/** The original framework's categories, plus `infra` for failures that are not the code's fault. */
export const ERROR_CLASSES = [
  "device-timeout",
  "init-failure",
  "connection-issue",
  "hardware-error",
  "resource-exhaustion",
  "segfault",
  "assertion-failure",
  "infra",
  "unknown",
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** Which recogniser fired: finer than the class, shown to people and kept in the triage. */
export const FAMILIES = [
  "tt-device-timeout",
  "pytest-timeout",
  "job-timeout",
  "timeout",
  "tt-mailbox",
  "hardware",
  "init",
  "import-error",
  "connection",
  "segfault",
  "oom",
  "infra-runner",
  "infra-checkout",
  "infra-disk",
  "infra-artifact",
  "tt-throw",
  "tt-fatal",
  "cpp-fatal",
  "python-exception",
  "assertion",
  "pytest-failed",
  "gtest-failed",
  "exit-code",
  "gha-error",
] as const;
export type Family = (typeof FAMILIES)[number];

/**
 * 3: a specific signature (segfault, OOM, device timeout, a failed test);
 * 2: a generic one (a TT_THROW with no reason yet, "timed out", an uncaught C++ exception);
 * 1: only a symptom (non-zero exit code, a bare ##[error]).
 */
export type Strength = 1 | 2 | 3;

/** When several classes appear in one log, the more specific root cause wins. */
const CLASS_PRIORITY: Record<ErrorClass, number> = {
  segfault: 9,
  "resource-exhaustion": 8,
  "device-timeout": 7,
  "hardware-error": 6,
  "init-failure": 5,
  "connection-issue": 4,
  "assertion-failure": 3,
  infra: 2,
  unknown: 1,
};

export function rank(errorClass: ErrorClass, strength: Strength): number {
  return strength * 10 + CLASS_PRIORITY[errorClass];
}

interface Rule {
  re: RegExp;
  errorClass: ErrorClass;
  family: Family;
  strength: Strength;
}

/** Ordered: the first rule that matches a line names it. */
const RULES: Rule[] = [
  // Segfaults.
  {
    re: /Segmentation fault|SIGSEGV|\bsignal 11\b|Fatal Python error: Segmentation/,
    errorClass: "segfault",
    family: "segfault",
    strength: 3,
  },
  {
    re: /exit (?:code|status) 139\b|returned (?:non-zero exit status )?139\b/,
    errorClass: "segfault",
    family: "segfault",
    strength: 3,
  },
  // Out of memory.
  {
    re: /\bMemoryError\b|std::bad_alloc|\bOut of memory\b|oom-kill|\bOOM[ -]killer\b|Killed process \d+|Cannot allocate memory|(?:^|\s)Killed\s*$|\b\d+ Killed\s/,
    errorClass: "resource-exhaustion",
    family: "oom",
    strength: 3,
  },
  // Infrastructure: not the code's fault, never counts toward a failure streak.
  {
    re: /The runner has received a shutdown signal|lost communication with the server|The hosted runner encountered an error/,
    errorClass: "infra",
    family: "infra-runner",
    strength: 3,
  },
  {
    re: /fatal: could not read (?:Username|Password|from remote repository)|The process '\/usr\/bin\/git' failed|fatal: unable to access '/,
    errorClass: "infra",
    family: "infra-checkout",
    strength: 3,
  },
  { re: /No space left on device/, errorClass: "infra", family: "infra-disk", strength: 3 },
  {
    re: /Artifact not found|Unable to find any artifacts|Unable to download artifact|No artifacts found|Failed to download artifact/i,
    errorClass: "infra",
    family: "infra-artifact",
    strength: 3,
  },
  // TT device hangs and timeouts.
  {
    re: /TIMEOUT: device timeout|device timeout, potential hang/,
    errorClass: "device-timeout",
    family: "tt-device-timeout",
    strength: 3,
  },
  {
    re: /\bFailed: Timeout >\s*\d/,
    errorClass: "device-timeout",
    family: "pytest-timeout",
    strength: 3,
  },
  // pytest-timeout's banner; the "Failed: Timeout >Ns" line that follows names it better.
  { re: /^\+{5,} Timeout \+{5,}$/, errorClass: "device-timeout", family: "pytest-timeout", strength: 2 },
  {
    re: /has exceeded the maximum execution time/,
    errorClass: "device-timeout",
    family: "job-timeout",
    strength: 3,
  },
  {
    re: /Read unexpected run_mailbox value/,
    errorClass: "hardware-error",
    family: "tt-mailbox",
    strength: 3,
  },
  {
    re: /PCIe (?:error|link (?:down|failure))|\bAER:|ARC (?:core )?(?:is )?(?:not responding|timeout|hang)|[Cc]hip \d+ (?:is )?not responding|uncorrectable (?:ECC )?error|[Ee]thernet (?:core|link)s? .*(?:down|timed? ?out)/,
    errorClass: "hardware-error",
    family: "hardware",
    strength: 3,
  },
  // Initialisation.
  {
    re: /[Ff]ailed to (?:initialize|init|open|create) (?:the )?(?:device|chip|driver|cluster|mesh)|No (?:Tenstorrent |TT )?(?:devices|chips) (?:found|detected)|\/dev\/tenstorrent.*(?:No such file|Permission denied|not found)|Device \d+ (?:is )?not (?:found|available)/,
    errorClass: "init-failure",
    family: "init",
    strength: 3,
  },
  {
    re: /\b(?:ImportError|ModuleNotFoundError)\b|ERROR collecting |undefined symbol: /,
    errorClass: "init-failure",
    family: "import-error",
    strength: 3,
  },
  // Connections (the one generic "timed out" that names a connection belongs here).
  {
    re: /\bConnection(?:Error|RefusedError|ResetError)\b|Connection (?:refused|reset|aborted|timed out)|\bECONN(?:RESET|REFUSED)\b|\bETIMEDOUT\b|Temporary failure in name resolution|Could not resolve host/,
    errorClass: "connection-issue",
    family: "connection",
    strength: 3,
  },
  { re: /\btimed out\b|\bTimeoutError\b/i, errorClass: "device-timeout", family: "timeout", strength: 2 },
  // Assertions, exceptions and C++ fatal errors.
  { re: /\bTT_FATAL\b/, errorClass: "assertion-failure", family: "tt-fatal", strength: 2 },
  { re: /\bTT_THROW\b/, errorClass: "assertion-failure", family: "tt-throw", strength: 2 },
  // An uncaught C++ exception: the `what():` line says which, the `terminate` line only that it happened.
  { re: /^\s*what\(\):\s+\S/, errorClass: "assertion-failure", family: "cpp-fatal", strength: 2 },
  {
    re: /terminate called (?:after throwing|without an active exception)/,
    errorClass: "assertion-failure",
    family: "cpp-fatal",
    strength: 1,
  },
  {
    re: /\bAssertionError\b|^E\s+assert\b|Assertion [`'"].*[`'"] failed|: Failure$|Expected equality of these values/,
    errorClass: "assertion-failure",
    family: "assertion",
    strength: 3,
  },
  // A check script's own verdict: `FAILED: add.sh 2 3 printed 2, expected 5`.
  {
    re: /^(?:FAIL(?:ED)?|ERROR):?\s.*\b(?:expected|but got|instead of)\b/i,
    errorClass: "assertion-failure",
    family: "assertion",
    strength: 2,
  },
  // Symptoms.
  {
    re: /exit (?:code|status) 137\b/,
    errorClass: "resource-exhaustion",
    family: "oom",
    strength: 1,
  },
  { re: /Process completed with exit code [1-9]/, errorClass: "unknown", family: "exit-code", strength: 1 },
];

/**
 * Cheap test run on every line before the rules: most lines of a large log are not failures,
 * and one alternation is much cheaper than thirty regexes.
 */
const PREFILTER =
  /FAIL|ERROR|rror|Traceback|TT_|TIMEOUT|Timeout|timed out|Segmentation|SIGSEGV|signal 11|exit (?:code|status)|returned|exceeded|Killed|bad_alloc|memory|oom|OOM|terminate called|shutdown signal|lost communication|fatal|No space|rtifact|mailbox|assert|Assert|Failure|Exception|PCIe|AER:|ARC|hip \d|thernet|Connection|ECONN|ETIMEDOUT|resolve|name resolution|No (?:Tenstorrent |TT )?(?:devices|chips)|[Ff]ailed to|tenstorrent|Device \d|undefined symbol|^E\s|^_{3,} |^\+{5,}|^[A-Za-z_][\w.]*(?:Error|Exception)|^\[ +(?:RUN|OK|FAILED) +\]|^={3,} |what\(\)/;

export function mightMatter(line: string): boolean {
  return PREFILTER.test(line);
}

export interface Classified {
  errorClass: ErrorClass;
  family: Family;
  strength: Strength;
}

/** The first rule matching a cleaned line, or null. */
export function classifyLine(line: string): Classified | null {
  for (const r of RULES) {
    if (r.re.test(line)) return { errorClass: r.errorClass, family: r.family, strength: r.strength };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Test ids.

/**
 * `FAILED tests/a.py::test_b[x] - AssertionError: ...`, also pytest-xdist's `[gw0] [ 50%] FAILED id`
 * and `[gw0] FAILED id`. The id itself is read by readPytestId (its parameters may hold spaces).
 */
const PYTEST_RESULT_HEAD = /^(?:\[gw\d+\]\s+)?(?:\[\s*\d+%\]\s+)?(FAILED|ERROR)\s+/;
/** A pytest id: a .py path, then `::` parts. */
const PYTEST_ID = /^[^\s[\]]+?\.py(?:::[^\s[\]]+)*$/;
/** `____________ test_name[param] ____________` or `_____ ERROR collecting tests/x.py _____`. */
const PYTEST_HEADER = /^_{3,} (.+?) _{3,}$/;
const PYTEST_SECTION = /^={3,} (.+?) ={3,}$/;
/** `[  FAILED  ] Suite.Test (12 ms)` or `[  FAILED  ] Suite/Fixture.Test/0, where GetParam() = 4`. */
const GTEST_FAILED = /^\[\s+FAILED\s+\] ([A-Za-z_][\w/]*\.[\w/]+)(?:,|\s|$)/;
const GTEST_RUN = /^\[\s+RUN\s+\] ([A-Za-z_][\w/]*\.[\w/]+)/;
const GTEST_OK = /^\[\s+OK\s+\] /;
const PY_EXCEPTION =
  /^(?:E\s+)?((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failed))\b(?::\s*(.*))?$/;

export type TestLine =
  | { kind: "pytest-result"; id: string; outcome: "FAILED" | "ERROR"; message?: string }
  | { kind: "pytest-header"; name: string }
  | { kind: "pytest-section"; title: string }
  | { kind: "gtest-failed"; id: string }
  | { kind: "gtest-run"; id: string }
  | { kind: "gtest-ok" };

/** Recognise the test-runner structure lines of pytest and GoogleTest. */
export function parseTestLine(line: string): TestLine | null {
  const c = line.charCodeAt(0);
  if (c === 91 /* [ */) {
    let m = GTEST_FAILED.exec(line);
    if (m) return { kind: "gtest-failed", id: m[1]! };
    m = GTEST_RUN.exec(line);
    if (m) return { kind: "gtest-run", id: m[1]! };
    if (GTEST_OK.test(line)) return { kind: "gtest-ok" };
  }
  if (c === 95 /* _ */) {
    const m = PYTEST_HEADER.exec(line);
    if (m) return { kind: "pytest-header", name: m[1]! };
  }
  if (c === 61 /* = */) {
    const m = PYTEST_SECTION.exec(line);
    if (m) return { kind: "pytest-section", title: m[1]! };
  }
  const head = PYTEST_RESULT_HEAD.exec(line);
  if (head) {
    const id = readPytestId(line, head[0].length);
    if (id) {
      // After the id: nothing (trailing spaces are fine), or ` - message`.
      const rest = line.slice(id.end).trim();
      if (rest === "" || rest === "-" || rest.startsWith("- ")) {
        const message = rest.slice(1).trim();
        return {
          kind: "pytest-result",
          id: id.id,
          outcome: head[1] as "FAILED" | "ERROR",
          ...(message ? { message } : {}),
        };
      }
    }
  }
  // Verbose progress: `tests/a.py::test_b[x] FAILED  [ 50%]`.
  if (line.includes(".py::")) {
    const id = readPytestId(line, 0);
    if (id) {
      const m = /^\s+(FAILED|ERROR)\b/.exec(line.slice(id.end));
      if (m) return { kind: "pytest-result", id: id.id, outcome: m[1] as "FAILED" | "ERROR" };
    }
  }
  return null;
}

/**
 * The pytest id at `start`: a .py path, its `::` parts and the parameters in brackets, which may
 * hold spaces and brackets of their own (`test_x[shape=[1, 32]-dtype=bf16]`). Null when there is
 * none.
 */
function readPytestId(line: string, start: number): { id: string; end: number } | null {
  let i = start;
  let depth = 0;
  let bracketAt = -1;
  for (; i < line.length; i++) {
    const c = line[i]!;
    if (c === "[") {
      if (depth === 0 && bracketAt === -1) bracketAt = i;
      depth++;
    } else if (c === "]") {
      if (depth === 0) return null;
      depth--;
      if (depth === 0) {
        i++;
        break;
      }
    } else if (depth === 0 && (c === " " || c === "\t")) break;
  }
  if (depth !== 0) return null;
  const id = line.slice(start, i);
  const path = bracketAt === -1 ? id : line.slice(start, bracketAt);
  // The parameters end the id: `a.py::t[x]y` is not an id.
  if (bracketAt !== -1 && i < line.length && !/\s/.test(line[i]!)) return null;
  if (!PYTEST_ID.test(path)) return null;
  return { id, end: i };
}

/** A Python exception line: `RuntimeError: ...` (end of a traceback) or pytest's `E   ValueError: ...`. */
export function parseExceptionLine(line: string): { type: string; message: string } | null {
  const m = PY_EXCEPTION.exec(line);
  if (!m) return null;
  return { type: m[1]!, message: m[2] ?? "" };
}

/** The last path-free part of a test id, to match `___ test_x[1] ___` headers with `a.py::test_x[1]`. */
export function testLeaf(id: string): string {
  const bracket = id.indexOf("[");
  const head = bracket === -1 ? id : id.slice(0, bracket);
  const tail = bracket === -1 ? "" : id.slice(bracket);
  const parts = head.split(/::|\./);
  return `${parts[parts.length - 1] ?? head}${tail}`;
}
