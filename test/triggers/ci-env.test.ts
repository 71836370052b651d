import nock from "nock";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadPrompts, reproducePrompt } from "../../src/agent/prompts.js";
import { DEFAULT_REPO_CONFIG, parseRepoConfig } from "../../src/config/repo-config.js";
import { readWorkflowJob } from "../../src/triggers/ci/workflow-env.js";
import { API, examplePayload, nockInstallationToken } from "../helpers/github.js";
import { type TriggerHarness, triggerHarness } from "./harness.js";

const OWNER = "Codertocat";
const REPO = "Hello-World";
const WORKFLOW = ".github/workflows/ttnn-post-commit.yaml";

const TT_WORKFLOW = `
name: ttnn post-commit
env:
  LOGURU_LEVEL: INFO
jobs:
  ttnn-unit:
    name: ttnn unit tests (N150)
    runs-on: [N150, in-service]
    timeout-minutes: 45
    container:
      image: ghcr.io/tenstorrent/tt-metal/tt-metalium/ubuntu-22.04-ci-test-amd64:v1.2
      env:
        TT_METAL_HOME: /work
        PYTHONPATH: /work
        LD_LIBRARY_PATH: /work/build/lib
        ARCH_NAME: wormhole_b0
        HF_TOKEN: \${{ secrets.HF_TOKEN }}
      volumes:
        - /dev/hugepages-1G:/dev/hugepages-1G
        - /mnt/MLPerf:/mnt/MLPerf:ro
      options: "--device /dev/tenstorrent -w /work --shm-size 2g --privileged"
    steps:
      - uses: actions/checkout@v4
      - name: Run tests
        timeout-minutes: 20
        run: |
          source python_env/bin/activate
          pytest tests/ttnn/unit_tests/operations/test_matmul.py -x
`;

/** GitHub as the detector sees it, serving the workflow file at each run's commit. */
function fakeGitHub(workflowAt: Map<string, string>) {
  const attempts = new Map<string, Array<{ name: string; conclusion: string }>>();
  const contentRequests: string[] = [];
  nock(API).persist().get(`/repos/${OWNER}/${REPO}/contents/.github%2Fautofix.yml`).reply(404, {});
  nock(API).persist().get(`/repos/${OWNER}/.github/contents/.github%2Fautofix.yml`).reply(404, {});
  nock(API)
    .persist()
    .get(/\/contents\/\.github(%2F|\/)workflows/)
    .query(true)
    .reply((uri) => {
      contentRequests.push(uri);
      const ref = new URL(uri, API).searchParams.get("ref") ?? "";
      const text = workflowAt.get(ref);
      if (!text) return [404, {}];
      return [
        200,
        {
          type: "file",
          encoding: "base64",
          size: text.length,
          content: Buffer.from(text).toString("base64"),
        },
      ];
    });
  nock(API)
    .persist()
    .get(/\/actions\/runs\/\d+\/attempts\/\d+\/jobs/)
    .query(true)
    .reply((uri) => {
      const [, runId, attempt] = /runs\/(\d+)\/attempts\/(\d+)/.exec(uri)!;
      const jobs = (attempts.get(`${runId}/${attempt}`) ?? []).map((j, i) => ({
        id: Number(runId) * 10 + i,
        name: j.name,
        conclusion: j.conclusion,
        labels: ["N150", "in-service"],
        html_url: `https://github.com/${OWNER}/${REPO}/actions/runs/${runId}/job/${Number(runId) * 10 + i}`,
        steps: [
          { name: "Set up job", conclusion: "success" },
          { name: "Initialize containers", conclusion: "success" },
          { name: "Run actions/checkout@v4", conclusion: "success" },
          { name: "Run tests", conclusion: j.conclusion },
        ],
      }));
      return [200, { total_count: jobs.length, jobs }];
    });
  nock(API)
    .persist()
    .get(/\/check-runs\/\d+\/annotations/)
    .query(true)
    .reply(200, [{ annotation_level: "failure", title: "", message: "TIMEOUT: device timeout" }]);
  nock(API).persist().get(`/repos/${OWNER}/${REPO}/issues`).query(true).reply(200, []);
  nock(API).persist().post(`/repos/${OWNER}/${REPO}/issues`).reply(201, { number: 501 });
  nock(API)
    .persist()
    .patch(/\/issues\/\d+$/)
    .reply(200, {});
  nock(API)
    .persist()
    .get(/\/issues\/\d+\/comments/)
    .query(true)
    .reply(200, []);
  nock(API)
    .persist()
    .post(/\/issues\/\d+\/comments/)
    .reply(201, { id: 9001 });
  return { attempts, contentRequests };
}

describe("a CI-triggered job takes the failed job's environment and command from its workflow at the run's commit", () => {
  let h: TriggerHarness;
  let gh: ReturnType<typeof fakeGitHub>;
  const workflowAt = new Map<string, string>();
  beforeAll(() => nock.disableNetConnect());
  beforeEach(async () => {
    h = await triggerHarness();
    nockInstallationToken();
    workflowAt.clear();
    gh = fakeGitHub(workflowAt);
  });
  afterEach(async () => {
    await h.close();
  });

  const shaOf = (n: number) => `${n}`.padStart(40, "b");
  async function failRun(n: number) {
    const p = examplePayload("workflow_run", "completed");
    const runId = 8000 + n;
    p.repository.default_branch = "main";
    Object.assign(p.workflow_run, {
      id: runId,
      run_number: n,
      run_attempt: 1,
      head_branch: "main",
      head_sha: shaOf(n),
      event: "push",
      name: "ttnn post-commit",
      path: WORKFLOW,
      workflow_id: 77,
      conclusion: "failure",
      html_url: `https://github.com/${OWNER}/${REPO}/actions/runs/${runId}`,
    });
    p.workflow_run.head_repository = { ...p.repository };
    gh.attempts.set(`${runId}/1`, [{ name: "ttnn unit tests (N150)", conclusion: "failure" }]);
    await h.deliver("workflow_run", p);
  }

  it("image, env, workdir and --shm-size from the job's container; the step's run command and timeout; refused options said", async () => {
    // The workflow of the third run's commit is the one that counts (earlier commits differ).
    workflowAt.set(shaOf(1), TT_WORKFLOW.replace("v1.2", "v1.0"));
    workflowAt.set(shaOf(3), TT_WORKFLOW);
    for (const n of [1, 2, 3]) await failRun(n);
    const [job] = await h.jobs();
    expect(job).toBeDefined();
    expect(gh.contentRequests.some((u) => u.includes(`ref=${shaOf(3)}`))).toBe(true);
    const data = job!.data;
    expect(data.environment).toMatchObject({
      image: "ghcr.io/tenstorrent/tt-metal/tt-metalium/ubuntu-22.04-ci-test-amd64:v1.2",
      env: {
        TT_METAL_HOME: "/work",
        PYTHONPATH: "/work",
        LD_LIBRARY_PATH: "/work/build/lib",
        ARCH_NAME: "wormhole_b0",
        LOGURU_LEVEL: "INFO",
      },
      options: ["--shm-size=2g"],
      workdir: "/work",
      source: `workflow ${WORKFLOW}@${shaOf(3)} job ttnn-unit`,
    });
    // The secret-valued variable is an expression: never taken.
    expect(data.environment!.env.HF_TOKEN).toBeUndefined();
    const notes = data.environment!.notes.join("\n");
    expect(notes).toContain("HF_TOKEN not taken");
    expect(notes).toMatch(/options not taken .*--device \/dev\/tenstorrent.*--privileged/);
    expect(notes).toContain("volumes not taken");
    expect(data.request.ciCommand).toEqual({
      source: `workflow ${WORKFLOW}@${shaOf(3)} job ttnn-unit step "Run tests"`,
      run: "source python_env/bin/activate\npytest tests/ttnn/unit_tests/operations/test_matmul.py -x\n",
      timeoutMinutes: 20,
    });
    expect(data.ci?.workflowPath).toBe(WORKFLOW);

    // The reproduction prompt starts from that command (and the repository's commands.test reaches it too).
    const cfg = parseRepoConfig("commands:\n  test: pytest tests/ttnn/unit_tests -x\n");
    if (!cfg.ok) throw new Error("bad config");
    const prompt = reproducePrompt(await loadPrompts(), {
      request: data.request,
      failureContext: "TIMEOUT: device timeout",
      testDir: "autofix-tests/x",
      config: cfg.config,
    });
    expect(prompt).toContain("The failed CI step ran this command");
    expect(prompt).toContain("pytest tests/ttnn/unit_tests/operations/test_matmul.py -x");
    expect(prompt).toContain("the job's timeout was 20 minutes");
    expect(prompt).toContain("`pytest tests/ttnn/unit_tests -x`");
  });

  it("an image given by an expression is not taken: the job falls back to the worker's default and says why", async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a template
    workflowAt.set(shaOf(3), TT_WORKFLOW.replace(/image: .*/, "image: ${{ inputs.docker-image }}"));
    for (const n of [1, 2, 3]) await failRun(n);
    const [job] = await h.jobs();
    expect(job!.data.environment).toMatchObject({ source: "worker default" });
    expect(job!.data.environment!.image).toBeUndefined();
    expect(job!.data.environment!.notes.join()).toMatch(/container image is not literal/);
    // The command is still the step's.
    expect(job!.data.request.ciCommand?.run).toContain("test_matmul.py");
  });

  it("a workflow file that cannot be read is said, and the job still starts", async () => {
    for (const n of [1, 2, 3]) await failRun(n);
    const [job] = await h.jobs();
    expect(job!.data.environment).toMatchObject({ source: "worker default" });
    expect(job!.data.environment!.notes.join()).toMatch(/could not be read \(404\)/);
    expect(job!.data.request.ciCommand).toBeUndefined();
  });
});

describe("readWorkflowJob", () => {
  it("maps matrix job names, unnamed steps and job defaults", () => {
    const f = readWorkflowJob(
      [
        "jobs:",
        "  t:",
        "    name: sweep",
        "    strategy: { matrix: { card: [N150, N300] } }",
        "    container: ghcr.io/tenstorrent/x:1",
        "    defaults: { run: { working-directory: tests } }",
        "    timeout-minutes: 30",
        "    steps:",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a template
        "      - run: ./run_sweep.sh --card ${{ matrix.card }}",
      ].join("\n"),
      "sweep (N300)",
      "Run ./run_sweep.sh --card N300",
    );
    expect(f.jobId).toBe("t");
    expect(f.environment?.image).toBe("ghcr.io/tenstorrent/x:1");
    expect(f.command).toEqual({
      step: "Run ./run_sweep.sh --card N300",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a template
      run: "./run_sweep.sh --card ${{ matrix.card }}",
      timeoutMinutes: 30,
      workingDirectory: "tests",
    });
    expect(f.notes.join()).toMatch(/matrix job/);
  });

  it("reusable workflows and unknown jobs are said, not guessed", () => {
    expect(
      readWorkflowJob("jobs:\n  a:\n    uses: ./.github/workflows/b.yaml\n", "a", null).notes[0],
    ).toMatch(/reusable workflow/);
    expect(readWorkflowJob("jobs:\n  a:\n    runs-on: x\n", "other", null).notes[0]).toMatch(/no job/);
    expect(readWorkflowJob(":\n  - [", "a", null).notes[0]).toMatch(/not valid YAML/);
  });

  it("commands.test reaches the prompt without a CI command too", async () => {
    const cfg = {
      ...DEFAULT_REPO_CONFIG,
      commands: { ...DEFAULT_REPO_CONFIG.commands, test: "ctest -R unit" },
    };
    const prompt = reproducePrompt(await loadPrompts(), {
      request: { deterministic: true, prompt: "fix it", rawLogs: "boom" },
      failureContext: "boom",
      testDir: "autofix-tests/x",
      config: cfg,
    });
    expect(prompt).toContain("`ctest -R unit`");
    expect(prompt).not.toContain("The failed CI step ran");
  });
});
