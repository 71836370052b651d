#!/usr/bin/env node
import { execFileSync } from "node:child_process";
// Agent harness overhead per model turn, with a zero-latency fake Messages API on loopback.
// runFixAgent (the real harness, the real SDK, real git and file tools) runs a full job: phase 1
// writes a test folder, then calls cheap tools (read_file on a small file, list_files) for N
// turns and finishes; phase 2 edits the file and finishes. Gate commands go through an injected
// instant runner (they are not per-turn work). Figures:
//   per turn = (job wall time - time spent inside the fake server) / turns
// next to the baseline: the same requests (replayed byte for byte) sent with the bare SDK,
// (wall - server time) / requests. And, from the requests the server received, the share of
// each request that is the stable prefix marked with cache_control (tools + system).
//
//   npm run bench:agent [-- --turns 50 --runs 5]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { runFixAgent } from "../dist/src/agent/index.js";
import { repoConfigSchema } from "../dist/src/config/repo-config.js";
import { startFakeAnthropic, tool } from "./lib/fake-anthropic.mjs";
import { median, reportJson } from "./lib/report.mjs";
import { printTable } from "./lib/table.mjs";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const TURNS = Number(opt("turns", "50")); // model turns of phase 1 (phase 2 adds 2)
const RUNS = Number(opt("runs", "5"));
const GOAL_MS = 20;
const GOAL_SHARE = 0.9;
const TEST_DIR = "autofix-tests/add";

const env = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "bench",
  GIT_AUTHOR_EMAIL: "bench@example.com",
  GIT_COMMITTER_NAME: "bench",
  GIT_COMMITTER_EMAIL: "bench@example.com",
};
const git = (cwd, ...a) => execFileSync("git", a, { cwd, env, encoding: "utf8" }).trim();

/** A small repository: the buggy script and a few folders for list_files. */
function makeRepo(root) {
  const dir = join(root, "repo");
  const files = {
    "src/add.sh": "#!/usr/bin/env bash\n# Prints the sum of two integers.\necho $(( $1 - $2 ))\n",
    "README.md": "# calc\n\nSmall shell calculator.\n",
    "src/lib/util.sh": '#!/usr/bin/env bash\nlog() { echo "[calc] $*" >&2; }\n',
    "tests/test_add.sh": 'out=$(bash src/add.sh 1 1)\n[ "$out" = 2 ]\n',
    "docs/usage.md": "Run `bash src/add.sh 2 3`.\n",
  };
  for (const [rel, c] of Object.entries(files)) {
    mkdirSync(join(dir, rel, ".."), { recursive: true });
    writeFileSync(join(dir, rel), c);
  }
  git(root, "init", "-q", "-b", "main", dir);
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "base");
  return { dir, sha: git(dir, "rev-parse", "HEAD") };
}

/** A realistic triaged excerpt (about 1.5 KB) as the failure context. */
const FAILURE_CONTEXT = [
  "##[group]Run bash tests/test_add.sh",
  ...Array.from({ length: 12 }, (_, i) => `tests/test_add.sh::case_${i} PASSED`),
  "=================================== FAILURES ===================================",
  "___________________________________ test_add ___________________________________",
  "    out=$(bash src/add.sh 2 3)",
  '>   [ "$out" = 5 ]',
  "E   AssertionError: expected 5, got -1",
  "E   where -1 = add(2, 3)",
  "tests/test_add.sh:2: AssertionError",
  "FAILED tests/test_add.sh::test_add - AssertionError: expected 5, got -1",
  "========================= 1 failed, 12 passed in 0.31s =========================",
  "##[error]Process completed with exit code 1.",
].join("\n");

const phaseOf = (body) =>
  body.tools.find((t) => t.name === "finish")?.input_schema?.properties?.test_dir ? "reproduce" : "fix";

/** The fake model: decides from the request which phase and which turn it is. */
function script(body) {
  const reproduce = phaseOf(body) === "reproduce";
  const k = body.messages.filter((m) => m.role === "assistant").length;
  if (reproduce) {
    if (k === 0)
      return {
        content: [
          tool("write_file", {
            path: `${TEST_DIR}/tests/test_add.sh`,
            content:
              'out=$(bash src/add.sh 2 3)\n[ "$out" = 5 ] || { echo "expected 5, got $out"; exit 1; }\n',
          }),
          tool("write_file", { path: `${TEST_DIR}/README.md`, content: "# add\nadd.sh subtracts.\n" }),
          tool("write_file", {
            path: `${TEST_DIR}/run_test.sh`,
            content: `#!/usr/bin/env bash\ncd "$(dirname "$0")/../.."\nexec bash ${TEST_DIR}/tests/test_add.sh\n`,
            executable: true,
          }),
        ],
      };
    if (k < TURNS - 1)
      return {
        content: [
          k % 2 ? tool("read_file", { path: "src/add.sh" }) : tool("list_files", { path: ".", depth: 2 }),
        ],
      };
    return {
      content: [
        tool("finish", {
          test_dir: TEST_DIR,
          command: `bash ${TEST_DIR}/run_test.sh`,
          failure_mode: "add.sh prints 2-3 instead of 2+3",
        }),
      ],
    };
  }
  if (k === 0)
    return {
      content: [tool("edit_file", { path: "src/add.sh", old_string: "$1 - $2", new_string: "$1 + $2" })],
    };
  return {
    content: [
      tool("finish", {
        summary: "Add instead of subtract",
        root_cause: "The arithmetic used minus",
        changes: "src/add.sh: use +",
        performance: "none",
      }),
    ],
  };
}

/** Gate commands: instant; fail while add.sh subtracts, pass once it adds. */
function instantRunner(_command, opts) {
  const fixed = readFileSync(join(opts.cwd, "src/add.sh"), "utf8").includes("$1 + $2");
  const output = fixed ? "ok\n" : "expected 5, got -1\n";
  return Promise.resolve({
    exitCode: fixed ? 0 : 1,
    signal: null,
    stdout: output,
    stderr: "",
    output,
    cutBytes: 0,
    timedOut: false,
    cancelled: false,
    durationMs: 0,
    pid: undefined,
  });
}

const fake = await startFakeAnthropic(script);
const client = new Anthropic({ apiKey: "bench", baseURL: fake.url, maxRetries: 0 });
const config = repoConfigSchema.parse({ budgets: { max_turns: TURNS + 10 } });
const root = mkdtempSync(join(tmpdir(), "autofix-bench-agent-"));

async function job(i) {
  const repo = makeRepo(join(root, `run-${i}`));
  fake.reset();
  const t0 = performance.now();
  const result = await runFixAgent({
    workspace: repo.dir,
    baseSha: repo.sha,
    branch: "autofix/add",
    request: { deterministic: true, prompt: "add.sh returns the wrong sum", rawLogs: "expected 5, got -1" },
    config,
    failureContext: FAILURE_CONTEXT,
    client,
    model: "claude-sonnet-5",
    runCommand: instantRunner,
  });
  const wall = performance.now() - t0;
  if (result.status !== "succeeded") throw new Error(`agent run ended ${result.status}: ${result.reason}`);
  const requests = [...fake.requests];
  const serverMs = requests.reduce((a, r) => a + r.serverMs, 0);
  return { wall, serverMs, turns: requests.length, requests };
}

/** The same request bodies through the bare SDK: what one round trip costs without the harness. */
async function sdkReplay(bodies) {
  fake.reset();
  const t0 = performance.now();
  for (const b of bodies) await client.messages.create(b);
  const wall = performance.now() - t0;
  return { wall, serverMs: fake.serverMs(), n: bodies.length };
}

try {
  await job("warmup"); // JIT, module loading, connection
  const runs = [];
  const sdk = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await job(i);
    runs.push(r);
    sdk.push(await sdkReplay(r.requests.map((q) => q.body)));
  }
  const perTurn = runs.map((r) => (r.wall - r.serverMs) / r.turns);
  const sdkPer = sdk.map((s) => (s.wall - s.serverMs) / s.n);
  const serverPer = runs.map((r) => r.serverMs / r.turns);
  // Steady state: client-side time between an answer and the next request in the same phase.
  const gaps = runs.flatMap((r) =>
    r.requests
      .slice(1)
      .map((q, j) => ({ q, prev: r.requests[j] }))
      .filter(({ q, prev }) => phaseOf(q.body) === phaseOf(prev.body) && q.body.messages.length > 1)
      .map(({ q, prev }) => q.arrivedAt - prev.answeredAt),
  );

  // Cached prefix share, per request, from the last run. Bytes of the JSON the server got;
  // tokens estimated as characters / 4 give the same ratio, since both sides divide by 4.
  // What a request can read from the cache: tools + system (both marked), plus everything the
  // previous request of the same phase sent, when that request carried a breakpoint on its
  // newest block (the cache then holds that whole prefix). Only the messages added since the
  // previous request are new input.
  const last = runs.at(-1);
  const lastBlockMarked = (b) => {
    const m = b.messages.at(-1);
    return Array.isArray(m?.content) && m.content.at(-1)?.cache_control?.type === "ephemeral";
  };
  const share = last.requests.map((q, idx) => {
    const b = q.body;
    const fixed = JSON.stringify(b.tools).length + JSON.stringify(b.system).length;
    const whole = q.raw.length;
    const phase = phaseOf(b);
    const prev = idx > 0 ? last.requests[idx - 1].body : null;
    const samePhase = prev && phaseOf(prev) === phase && b.messages.length > prev.messages.length;
    const added = samePhase ? JSON.stringify(b.messages.slice(prev.messages.length)).length : whole - fixed;
    const prefix = samePhase && lastBlockMarked(prev) ? whole - added : fixed;
    const marked =
      b.tools.at(-1).cache_control?.type === "ephemeral" &&
      b.system.at(-1).cache_control?.type === "ephemeral" &&
      lastBlockMarked(b);
    return {
      idx,
      phase,
      turn: b.messages.filter((m) => m.role === "assistant").length + 1,
      fixed,
      prefix,
      whole,
      marked,
    };
  });
  const fromSecond = share.filter((s) => s.turn >= 2);
  const ratio = (s) => s.prefix / s.whole;
  const minShare = Math.min(...fromSecond.map(ratio));
  const medShare = median(fromSecond.map(ratio));
  const at = (phase, turn) => share.find((s) => s.phase === phase && s.turn === turn);
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  // The old layout, for comparison: breakpoints on tools and system only.
  const fixedOnly = median(fromSecond.map((s) => s.fixed / s.whole));

  const turns = runs[0].turns;
  console.log(
    `\nAgent harness per model turn: ${turns} turns per job (phase 1: ${TURNS}, phase 2: 2), zero-latency fake Messages API on loopback, ${RUNS} jobs after a warm-up\n`,
  );
  printTable(
    ["figure", "median", "min", "max"],
    [
      [
        "harness: (job wall - server time) / turns",
        `${median(perTurn).toFixed(2)} ms`,
        `${Math.min(...perTurn).toFixed(2)} ms`,
        `${Math.max(...perTurn).toFixed(2)} ms`,
      ],
      [
        "harness steady state: answer -> next request",
        `${median(gaps).toFixed(2)} ms`,
        `${Math.min(...gaps).toFixed(2)} ms`,
        `${Math.max(...gaps).toFixed(2)} ms`,
      ],
      [
        "baseline: bare SDK, same requests, (wall - server) / request",
        `${median(sdkPer).toFixed(2)} ms`,
        `${Math.min(...sdkPer).toFixed(2)} ms`,
        `${Math.max(...sdkPer).toFixed(2)} ms`,
      ],
      ["time inside the fake server per request", `${median(serverPer).toFixed(2)} ms`, "", ""],
      ["job wall time", `${median(runs.map((r) => r.wall)).toFixed(0)} ms`, "", ""],
    ],
  );
  console.log(
    "\nCached prefix share of each request (tools + system + the previous request's messages, read from the cache through the breakpoint on the newest block; bytes of the request JSON; a chars/4 token estimate gives the same ratio):\n",
  );
  printTable(
    ["request", "prefix bytes", "request bytes", "cached share"],
    [
      ["reproduce, turn 1", ...cells(at("reproduce", 1))],
      ["reproduce, turn 2", ...cells(at("reproduce", 2))],
      ["reproduce, turn 10", ...cells(at("reproduce", 10))],
      [`reproduce, turn ${TURNS}`, ...cells(at("reproduce", TURNS))],
      ["fix, turn 2", ...cells(at("fix", 2))],
    ].filter((r) => r[1] !== undefined),
  );
  function cells(s) {
    return s ? [s.prefix, s.whole, pct(ratio(s))] : [undefined];
  }
  console.log(
    `\nfrom turn 2 on: median ${pct(medShare)}, min ${pct(minShare)} (goal > ${pct(GOAL_SHARE)}); every request marked: ${share.every((s) => s.marked)}`,
  );
  console.log(
    `for comparison, with breakpoints on tools and system only (the harness before this bench found it): median ${pct(fixedOnly)} from turn 2`,
  );
  reportJson(
    "agent",
    [
      {
        figure: "harness overhead per turn (median)",
        value: `${median(perTurn).toFixed(2)} ms`,
        baseline: `${median(sdkPer).toFixed(2)} ms (bare SDK round trip)`,
        goal: `< ${GOAL_MS} ms`,
        met: median(perTurn) < GOAL_MS,
      },
      {
        figure: "harness steady state per turn (answer -> next request)",
        value: `${median(gaps).toFixed(2)} ms`,
        baseline: `${median(sdkPer).toFixed(2)} ms (bare SDK round trip)`,
        goal: "-",
        met: null,
      },
      {
        figure: "cached prefix share from turn 2 (min / median)",
        value: `${pct(minShare)} / ${pct(medShare)}`,
        baseline: "-",
        goal: `> ${pct(GOAL_SHARE)}`,
        met: minShare > GOAL_SHARE,
      },
    ],
    {
      turns,
      perTurnMs: perTurn,
      steadyGapMs: median(gaps),
      sdkPerMs: sdkPer,
      shareTurn2: ratio(at("reproduce", 2)),
      shareLastTurn: ratio(at("reproduce", TURNS)),
      fixedPrefixOnly: fixedOnly,
    },
  );
} finally {
  await fake.close();
  rmSync(root, { recursive: true, force: true });
}
