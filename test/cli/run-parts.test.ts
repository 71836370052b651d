import { describe, expect, it } from "vitest";
import type { AgentResult, ProgressEvent } from "../../src/agent/index.js";
import { OUTCOME_EXIT } from "../../src/cli/command.js";
import {
  decidePreflight,
  describeGates,
  type PreflightFacts,
  parseGitHubRemote,
  parseRunArgs,
  type RunOptions,
} from "../../src/cli/run/preflight.js";
import {
  formatElapsed,
  ProgressPrinter,
  type StartInfo,
  startClock,
  startLines,
} from "../../src/cli/run/progress.js";
import { runExitCode, summaryLines } from "../../src/cli/run/summary.js";
import { DEFAULT_MODEL } from "../../src/config/env.js";
import { DEFAULT_REPO_CONFIG } from "../../src/config/repo-config.js";
import { OUTCOME_LABEL, OUTCOMES } from "../../src/contracts/outcome.js";
import type { PipelineOutput } from "../../src/pipeline/run.js";

/**
 * The pure parts of `autofix run`: preflight's decisions on gathered facts, the plan's and the
 * summary's lines, the progress printer on an injected clock. No git, no files, no network;
 * the end-to-end behaviour is in run.test.ts.
 */

const CWD = "/home/me/work";
const REPO = "/home/me/src/widgets";
const SHA = "0123456789abcdef0123456789abcdef01234567";
const BRANCH = "autofix/add-sh-returns-the-wrong-sum";

const options = (o: Partial<RunOptions> = {}): RunOptions => ({
  file: "info.json",
  repo: undefined,
  out: undefined,
  dryRun: false,
  base: undefined,
  githubRepo: undefined,
  sandbox: undefined,
  ...o,
});

const request = {
  deterministic: true,
  prompt: "add.sh returns the wrong sum",
  rawLogs: "expected 5, got -1",
};

const facts = (f: Partial<PreflightFacts> = {}): PreflightFacts => ({
  repository: { root: REPO, baseSha: SHA },
  info: { ok: true, request, notes: [] },
  outProblem: null,
  ...f,
});

const KEY = { ANTHROPIC_API_KEY: "k" };

describe("parseRunArgs", () => {
  it("defaults to ./info.json, no flags", () => {
    expect(parseRunArgs([])).toEqual({ ok: true, options: options() });
  });

  it("reads every option", () => {
    const r = parseRunArgs([
      "x.json",
      "--repo",
      "r",
      "--out",
      "o",
      "--dry-run",
      "--base",
      "origin/main",
      "--github-repo",
      "acme/widgets",
    ]);
    expect(r).toEqual({
      ok: true,
      options: {
        file: "x.json",
        repo: "r",
        out: "o",
        dryRun: true,
        base: "origin/main",
        githubRepo: "acme/widgets",
      },
    });
  });

  it("refuses two info.json files and unknown options", () => {
    expect(parseRunArgs(["a.json", "b.json"])).toEqual({
      ok: false,
      error: "one info.json at most; got a.json b.json",
    });
    const r = parseRunArgs(["--nope"]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/Unknown option '--nope'/);
  });
});

describe("decidePreflight", () => {
  it("a plan when everything is in place: local only without a token", () => {
    const r = decidePreflight(options(), KEY, CWD, facts({ info: { ok: true, request, notes: ["n"] } }));
    expect(r).toEqual({
      ok: true,
      notes: ["n"],
      plan: {
        request,
        repo: REPO,
        baseRef: "HEAD",
        baseSha: SHA,
        outDir: `${CWD}/outputs`,
        dryRun: false,
        model: DEFAULT_MODEL,
        token: undefined,
        target: null,
        sandbox: "auto",
      },
    });
  });

  it("AUTOFIX_MODEL picks the model; --out and --base are taken as given", () => {
    const r = decidePreflight(
      options({ out: "../reports", base: "v1", dryRun: true }),
      { ...KEY, AUTOFIX_MODEL: "  claude-test  " },
      CWD,
      facts(),
    );
    expect(r.ok && r.plan).toMatchObject({
      model: "claude-test",
      outDir: "/home/me/reports",
      baseRef: "v1",
      dryRun: true,
    });
  });

  it("lists every problem at once, in order, with the info.json's notes", () => {
    const r = decidePreflight(
      options({ file: "bad.json", repo: "../plain", githubRepo: "nope" }),
      {},
      CWD,
      facts({
        repository: { root: null, whyNot: "fatal: not a git repository" },
        info: {
          ok: false,
          problems: ['"prompt" is required', "give a log source"],
          notes: ["unknown field"],
        },
        outProblem: "/home is not writable",
      }),
    );
    expect(r).toEqual({
      ok: false,
      notes: ["unknown field"],
      problems: [
        "/home/me/plain is not a git repository (fatal: not a git repository); run in a checkout or pass --repo PATH",
        'bad.json: "prompt" is required',
        "bad.json: give a log source",
        "ANTHROPIC_API_KEY is not set: the agent cannot call Claude (export ANTHROPIC_API_KEY=...)",
        '--github-repo must be OWNER/NAME; got "nope"',
        `cannot write the report to ${CWD}/outputs: /home is not writable`,
      ],
    });
  });

  it("ANTHROPIC_AUTH_TOKEN is enough for the model", () => {
    expect(decidePreflight(options(), { ANTHROPIC_AUTH_TOKEN: "t" }, CWD, facts()).ok).toBe(true);
  });

  it("no commit: a fresh repository and a --base that names nothing are told apart", () => {
    const none = facts({ repository: { root: REPO, baseSha: null } });
    const fresh = decidePreflight(options(), KEY, CWD, none);
    expect(!fresh.ok && fresh.problems).toEqual([
      `${REPO} has no commit yet: commit the code first (the agent works on a commit)`,
    ]);
    const bad = decidePreflight(options({ base: "v9" }), KEY, CWD, none);
    expect(!bad.ok && bad.problems).toEqual([`--base v9 is not a commit in ${REPO}`]);
  });

  it("an existing test must be in the base commit", () => {
    const withTest = {
      ok: true as const,
      request: { ...request, existingTestPath: "tests/t.sh" },
      notes: [],
    };
    const missing = decidePreflight(
      options(),
      KEY,
      CWD,
      facts({ info: withTest, existingTestInBase: false }),
    );
    expect(!missing.ok && missing.problems).toEqual([
      'info.json: "existing-test-path" tests/t.sh is not in the base commit 0123456789 (the run uses committed files only: commit it first)',
    ]);
    expect(decidePreflight(options(), KEY, CWD, facts({ info: withTest, existingTestInBase: true })).ok).toBe(
      true,
    );
  });

  it("a url needs a token to read its logs", () => {
    const withUrl = {
      ok: true as const,
      request: { deterministic: true, prompt: "p", url: "https://github.com/o/r/actions/runs/1" },
      notes: [],
    };
    const r = decidePreflight(options(), KEY, CWD, facts({ info: withUrl }));
    expect(!r.ok && r.problems[0]).toMatch(
      /^info\.json gives a "url": reading its Actions logs needs GITHUB_TOKEN/,
    );
  });

  describe("with a token", () => {
    const TOKEN = { ...KEY, GH_TOKEN: "ghp_x" };

    it("publishes to origin's GitHub repository, against the PR base branch", () => {
      const r = decidePreflight(
        options(),
        TOKEN,
        CWD,
        facts({ origin: "git@github.com:acme/widgets.git", prBaseBranch: "main" }),
      );
      expect(r.ok && r.plan.token).toBe("ghp_x");
      expect(r.ok && r.plan.target).toEqual({
        owner: "acme",
        repo: "widgets",
        apiBase: "https://api.github.com",
        remoteUrl: "git@github.com:acme/widgets.git",
        baseBranch: "main",
      });
    });

    it("GITHUB_TOKEN wins over GH_TOKEN", () => {
      const r = decidePreflight(
        options(),
        { ...TOKEN, GITHUB_TOKEN: "ghp_first" },
        CWD,
        facts({ origin: "https://github.com/acme/widgets", prBaseBranch: "main" }),
      );
      expect(r.ok && r.plan.token).toBe("ghp_first");
    });

    it("no origin, an origin off GitHub, no base branch: each is a problem", () => {
      const noOrigin = decidePreflight(options(), TOKEN, CWD, facts({ origin: null }));
      expect(!noOrigin.ok && noOrigin.problems[0]).toMatch(
        new RegExp(`^a GitHub token is set, .* but ${REPO} has no origin remote`),
      );
      // --github-repo names where to push when there is no origin.
      const named = decidePreflight(
        options({ githubRepo: "acme/widgets" }),
        TOKEN,
        CWD,
        facts({ origin: null, prBaseBranch: "main" }),
      );
      expect(named.ok && named.plan.target?.remoteUrl).toBe("https://github.com/acme/widgets.git");
      const offGitHub = decidePreflight(options(), TOKEN, CWD, facts({ origin: "file:///srv/w.git" }));
      expect(!offGitHub.ok && offGitHub.problems).toEqual([
        "cannot tell the GitHub repository from origin (file:///srv/w.git): it is not on github.com; pass --github-repo OWNER/NAME (or set GHE_HOST)",
      ]);
      const noBase = decidePreflight(
        options(),
        TOKEN,
        CWD,
        facts({ origin: "https://github.com/acme/widgets", prBaseBranch: null }),
      );
      expect(!noBase.ok && noBase.problems).toEqual([
        "cannot tell which branch the draft PR should target (detached HEAD and no origin/HEAD); pass --base BRANCH",
      ]);
    });

    it("--github-repo names the repository when origin does not", () => {
      const r = decidePreflight(
        options({ githubRepo: "acme/widgets" }),
        TOKEN,
        CWD,
        facts({ origin: "file:///srv/w.git", prBaseBranch: "main" }),
      );
      expect(r.ok && r.plan.target).toMatchObject({
        owner: "acme",
        repo: "widgets",
        remoteUrl: "file:///srv/w.git",
      });
    });

    it("on GHE_HOST the API is the enterprise one (https unless GHE_PROTOCOL=http)", () => {
      const ghe = { ...TOKEN, GHE_HOST: "ghe.example.com" };
      const f = facts({ origin: "git@ghe.example.com:team/tool.git", prBaseBranch: "dev" });
      const https = decidePreflight(options(), ghe, CWD, f);
      expect(https.ok && https.plan.target).toMatchObject({
        owner: "team",
        repo: "tool",
        apiBase: "https://ghe.example.com/api/v3",
      });
      const http = decidePreflight(options(), { ...ghe, GHE_PROTOCOL: "http" }, CWD, f);
      expect(http.ok && http.plan.target?.apiBase).toBe("http://ghe.example.com/api/v3");
      const onDotCom = decidePreflight(
        options(),
        ghe,
        CWD,
        facts({ origin: "https://github.com/acme/widgets", prBaseBranch: "main" }),
      );
      expect(onDotCom.ok && onDotCom.plan.target?.apiBase).toBe("https://api.github.com");
    });
  });
});

describe("describeGates", () => {
  it("deterministic and stress wording, with the runs each gate makes", () => {
    expect(describeGates({ deterministic: true }, DEFAULT_REPO_CONFIG)).toEqual({
      text: "deterministic: the reproduction must fail 2/2 runs on the base, the fix pass 2/2",
      reproduce: 2,
      fix: 2,
    });
    expect(describeGates({ deterministic: false }, DEFAULT_REPO_CONFIG)).toEqual({
      text: "non-deterministic: a stress reproduction must fail at least once in 5 runs on the base, the fix pass 5/5",
      reproduce: 5,
      fix: 5,
    });
  });
});

describe("startLines", () => {
  const start: StartInfo = {
    prompt: "add.sh returns the wrong sum\nmore detail",
    repo: REPO,
    baseRef: "HEAD",
    baseSha: SHA,
    failure: "deterministic: ...",
    url: undefined,
    existingTestPath: undefined,
    model: "m",
    sandbox: "bubblewrap",
    branch: { name: BRANCH, reused: false },
    publish: null,
    dryRun: false,
    outDir: "/out",
  };

  it("says what the run will do, local only without a token", () => {
    expect(startLines(start)).toEqual([
      "autofix run: add.sh returns the wrong sum",
      `  repository: ${REPO} (base HEAD = 0123456789ab; worked on in a temporary copy)`,
      "  failure:    deterministic: ...",
      "  logs:       raw-logs from the info.json",
      "  test:       written in phase 1",
      "  model:      m",
      "  sandbox:    bubblewrap",
      `  fix branch: ${BRANCH}`,
      "  publish:    nothing: no GITHUB_TOKEN or GH_TOKEN, everything stays local",
      "  report:     /out",
      "",
    ]);
  });

  it("an existing test, a reused branch, a dry run that would publish", () => {
    const lines = startLines({
      ...start,
      existingTestPath: "tests/t.sh",
      url: "https://github.com/o/r/actions/runs/1",
      branch: { name: BRANCH, reused: true },
      publish: {
        remoteUrl: "https://github.com/acme/widgets.git",
        owner: "acme",
        repo: "widgets",
        baseBranch: "main",
      },
      dryRun: true,
    });
    expect(lines).toContain("  logs:       https://github.com/o/r/actions/runs/1");
    expect(lines).toContain("  test:       existing tests/t.sh (phase 1 writes none)");
    expect(lines).toContain(`  fix branch: ${BRANCH} (the branch of an earlier run: updated)`);
    expect(lines).toContain(
      `  publish:    dry run: would push ${BRANCH} to origin (https://github.com/acme/widgets.git) and open a draft PR on acme/widgets against main`,
    );
  });
});

describe("summaryLines and the exit code", () => {
  const result = (
    r: Partial<Omit<AgentResult, "git">> & { git?: Partial<AgentResult["git"]> } = {},
  ): AgentResult =>
    ({
      status: "succeeded",
      reason: "proven",
      reproduction: {
        path: "autofix-tests/add",
        command: "./autofix-tests/add/run_test.sh",
        hash: "h",
        failureMode: "",
        existing: false,
      },
      ...r,
      git: {
        branch: BRANCH,
        baseSha: SHA,
        reproCommitSha: "aaaaaaaaaaaaaaaaaaaa",
        fixCommitSha: "bbbbbbbbbbbbbbbbbbbb",
        changedFiles: ["src/add.sh"],
        ...r.git,
      },
    }) as AgentResult;

  const output = (o: Partial<PipelineOutput> = {}): PipelineOutput => ({
    status: "succeeded",
    result: result(),
    reportPath: "/out/r.md",
    report: "",
    digest: "",
    pullRequest: null,
    pushed: null,
    planned: [],
    ...o,
  });

  it("a proven fix: the branch, the reproduction ref, the report last", () => {
    expect(summaryLines(output(), BRANCH, false)).toEqual([
      "",
      "Status: Success (exit 0)",
      `  fix:          branch ${BRANCH} at bbbbbbbbbbbb (changed: src/add.sh); see it with: git show ${BRANCH}`,
      `  reproduction: refs/autofix-repro/${BRANCH} at aaaaaaaaaaaa (autofix-tests/add)`,
      `    run it:     git worktree add --detach /tmp/autofix-repro-autofix-add-sh-returns-the-wrong-sum refs/autofix-repro/${BRANCH} && (cd /tmp/autofix-repro-autofix-add-sh-returns-the-wrong-sum && ./autofix-tests/add/run_test.sh); git worktree remove --force /tmp/autofix-repro-autofix-add-sh-returns-the-wrong-sum`,
      `    prove it:   autofix prove ${BRANCH}  (in the sandbox: fails on the base, passes on the fix)`,
      "Report: /out/r.md",
    ]);
  });

  it("a repository other than the current folder goes into both commands", () => {
    const lines = summaryLines(output(), BRANCH, false, "/home/me/my repo");
    expect(lines[4]).toMatch(/^ {4}run it: {5}git -C '\/home\/me\/my repo' worktree add --detach /);
    expect(lines[4]).toMatch(/; git -C '\/home\/me\/my repo' worktree remove --force /);
    expect(lines[5]).toBe(
      `    prove it:   autofix prove --repo '/home/me/my repo' ${BRANCH}  (in the sandbox: fails on the base, passes on the fix)`,
    );
  });

  it("published: the push and the PR", () => {
    const lines = summaryLines(
      output({
        pushed: { branch: BRANCH, sha: "cccccccccccccccc" },
        pullRequest: { url: "https://github.com/acme/widgets/pull/7", number: 7, created: false },
        planned: ["one"],
      }),
      BRANCH,
      false,
    );
    expect(lines).toContain(`  pushed:       ${BRANCH} at cccccccccccc to origin`);
    expect(lines).toContain("  pull request: https://github.com/acme/widgets/pull/7 (updated)");
    expect(lines).toContain("  publishing:");
    expect(lines).toContain("    - one");
  });

  it("a dry run lists what it would have done", () => {
    const lines = summaryLines(output({ planned: ["would push x", "would open y"] }), BRANCH, true);
    expect(lines.slice(-4)).toEqual([
      "  dry run: nothing was pushed or opened; it would:",
      "    - would push x",
      "    - would open y",
      "Report: /out/r.md",
    ]);
  });

  it("no fix: the reason on the status line, an existing test, the problem", () => {
    const lines = summaryLines(
      output({
        status: "failed",
        result: result({
          status: "failed",
          reason: "the fix gate refused",
          reproduction: {
            path: "tests/t.sh",
            command: "bash tests/t.sh",
            hash: "h",
            failureMode: "",
            existing: true,
          },
          git: { reproCommitSha: null, fixCommitSha: null, changedFiles: [] },
        }),
        problem: "something broke",
      }),
      BRANCH,
      false,
    );
    expect(lines).toEqual([
      "",
      "Status: Failed (exit 1): the fix gate refused",
      "  fix:          none accepted; no fix branch was created",
      "  reproduction: existing test tests/t.sh (bash tests/t.sh)",
      "  problem:      something broke",
      "Report: /out/r.md",
    ]);
  });

  it("no agent result at all (it never started)", () => {
    expect(summaryLines(output({ status: "failed", result: null }), BRANCH, false).slice(1, 3)).toEqual([
      "Status: Failed (exit 1)",
      "  fix:          none accepted; no fix branch was created",
    ]);
  });

  it("every outcome: the shared exit code and label", () => {
    for (const status of OUTCOMES) {
      expect(runExitCode({ status })).toBe(OUTCOME_EXIT[status]);
      expect(summaryLines(output({ status, result: null }), BRANCH, false)[1]).toBe(
        `Status: ${OUTCOME_LABEL[status]} (exit ${OUTCOME_EXIT[status]})`,
      );
    }
    expect(runExitCode({ status: "partial" })).toBe(3);
  });
});

describe("progress on an injected clock", () => {
  it("startClock measures from its first reading of the clock", () => {
    let t = Date.parse("2026-02-04T16:30:00Z");
    const clock = startClock(() => new Date(t));
    expect(clock.startedAt.toISOString()).toBe("2026-02-04T16:30:00.000Z");
    expect(clock.elapsed()).toBe(0);
    t += 65_500;
    expect(clock.elapsed()).toBe(65_500);
  });

  it("formatElapsed: [mm:ss], [h:mm:ss] past an hour, never negative", () => {
    expect(formatElapsed(0)).toBe("[00:00]");
    expect(formatElapsed(999)).toBe("[00:00]");
    expect(formatElapsed(65_000)).toBe("[01:05]");
    expect(formatElapsed(3_600_000 + 61_000)).toBe("[1:01:01]");
    expect(formatElapsed(-5)).toBe("[00:00]");
  });

  it("stamps each line with the elapsed time it is given and carries the spend", () => {
    let ms = 0;
    const lines: string[] = [];
    const p = new ProgressPrinter(
      (l) => lines.push(l),
      () => ms,
      { reproduce: 2, fix: 5 },
    );
    const usage = { inputTokens: 1200, outputTokens: 300, cacheReadTokens: 0, cacheWriteTokens: 0, turns: 1 };
    const events: ProgressEvent[] = [
      { type: "phase_started", phase: "reproduce", budget: { minutes: 5, turns: 60 } },
      { type: "turn", phase: "reproduce", turn: 1, maxTurns: 60 },
      {
        type: "spend",
        phase: "reproduce",
        usage: { ...usage, costUsd: 0.05 },
        total: { ...usage, costUsd: 0.05 },
      },
    ];
    for (const e of events) p.apply(e);
    ms = 61_000;
    p.apply({
      type: "gate_run",
      phase: "fix",
      run: {
        gate: "fix",
        run: 3,
        passed: true,
        exitCode: 0,
        signal: null,
        timedOut: false,
        durationMs: 1234,
        outputTail: "",
      },
    });
    ms = 62_000;
    p.line("publish: pushing");
    expect(lines).toEqual([
      "[00:00] reproduce: started · budget 5 min, 60 turns",
      "[00:00] reproduce: model turn 1 · 1.5k tokens · $0.050",
      "[01:01] fix: run 3/5 with the fix passed (exit 0, 1.2 s) · 1.5k tokens · $0.050",
      "[01:02] publish: pushing",
    ]);
  });
});

describe("origin URLs", () => {
  it("reads OWNER/NAME from github.com and GHE remotes, nothing from other URLs", () => {
    const hosts = ["github.com", "ghe.example.com"];
    for (const url of [
      "https://github.com/acme/widgets.git",
      "https://github.com/acme/widgets",
      "https://x-access-token:abc@github.com/acme/widgets.git/",
      "git@github.com:acme/widgets.git",
      "ssh://git@github.com:22/acme/widgets.git",
    ])
      expect(parseGitHubRemote(url, hosts), url).toEqual({
        owner: "acme",
        repo: "widgets",
        host: "github.com",
      });
    expect(parseGitHubRemote("git@ghe.example.com:team/tool.git", hosts)).toEqual({
      owner: "team",
      repo: "tool",
      host: "ghe.example.com",
    });
    for (const url of [
      "file:///srv/git/widgets.git",
      "/srv/git/widgets.git",
      "https://gitlab.com/acme/widgets.git",
      "https://github.com/acme",
      "https://github.com/acme/widgets/tree/main",
    ])
      expect(parseGitHubRemote(url, hosts), url).toBeNull();
  });
});

describe("--sandbox", () => {
  it("takes the flag over AUTOFIX_SANDBOX, defaults to auto, and refuses unknown values", () => {
    expect(parseRunArgs(["--sandbox", "none"])).toMatchObject({ ok: true, options: { sandbox: "none" } });
    expect(parseRunArgs(["--sandbox", "docker"])).toMatchObject({
      ok: false,
      error: '--sandbox must be one of auto, bwrap, container, none; got "docker"',
    });
    const facts = {
      repository: { root: REPO, baseSha: SHA },
      info: { ok: true as const, request: { deterministic: true, prompt: "p", rawLogs: "x" }, notes: [] },
      outProblem: null,
    };
    const env = { ANTHROPIC_API_KEY: "k" };
    const plan = (o: Partial<RunOptions>, e: NodeJS.ProcessEnv) => {
      const r = decidePreflight(options(o), e, CWD, facts);
      return r.ok ? r.plan.sandbox : r.problems;
    };
    expect(plan({}, env)).toBe("auto");
    expect(plan({}, { ...env, AUTOFIX_SANDBOX: "bwrap" })).toBe("bwrap");
    expect(plan({ sandbox: "none" }, { ...env, AUTOFIX_SANDBOX: "bwrap" })).toBe("none");
    expect(plan({}, { ...env, AUTOFIX_SANDBOX: "chroot" })).toEqual([
      'AUTOFIX_SANDBOX must be one of auto, bwrap, container, none; got "chroot"',
    ]);
  });
});
