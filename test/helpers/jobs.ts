import { FIX_JOB_VERSION, type FixJob } from "../../src/contracts/fix-job.js";

/** A valid FixJob with sensible values; override what a test is about. */
export function sampleJob(overrides: Partial<FixJob> = {}): FixJob {
  return {
    version: FIX_JOB_VERSION,
    source: "comment",
    repository: { owner: "tenstorrent", name: "tt-metal", installationId: 42, defaultBranch: "main" },
    target: { kind: "issue", number: 7, headSha: "a".repeat(40), headRef: "main" },
    request: {
      deterministic: true,
      prompt: "fix the gather timeout",
      url: "https://github.com/tenstorrent/tt-metal/actions/runs/1",
    },
    pool: "n150",
    fingerprint: "issue:tenstorrent/tt-metal#7",
    requestedBy: "octocat",
    createdAt: new Date("2026-11-24T00:00:00Z").toISOString(),
    ...overrides,
  };
}
