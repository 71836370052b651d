import { describe, expect, it } from "vitest";
import { POOLS } from "../../src/config/pools.js";
import { parseFixJob } from "../../src/contracts/fix-job.js";
import { POOL_NAMES } from "../../src/contracts/pools.js";
import { sampleJob } from "../helpers/jobs.js";

describe("pool names", () => {
  it("the catalogue has exactly one entry per pool name of the job contract, in its order", () => {
    expect(POOLS.map((p) => p.name)).toEqual([...POOL_NAMES]);
  });

  it("a job names one of them", () => {
    expect(parseFixJob(sampleJob({ pool: "t3k" })).ok).toBe(true);
    expect(parseFixJob(sampleJob({ pool: "gpu" }))).toEqual({
      ok: false,
      problems: [
        expect.stringMatching(/^`pool`: must be one of cpu, n150, n300, t3k, galaxy, p100, p150, p300/),
      ],
    });
  });
});
