import nock from "nock";
import { ProbotOctokit } from "probot";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { clampBody, MAX_BODY, upsertDraftPr } from "../../src/publish/pull-request.js";

const API = "https://api.github.com";
const octokit = new ProbotOctokit({
  auth: { token: "test" },
  retry: { enabled: false },
  throttle: { enabled: false },
});
const input = {
  owner: "o",
  repo: "r",
  head: "autofix/o-r-7",
  base: "main",
  title: "Fix gather timeout",
  body: "Summary",
};

describe("draft PR create-or-update", () => {
  beforeAll(() => nock.disableNetConnect());
  afterEach(() => nock.cleanAll());

  it("creates a draft PR when the branch has none", async () => {
    let created: any;
    nock(API)
      .get("/repos/o/r/pulls")
      .query({ head: "o:autofix/o-r-7", state: "open", per_page: 10 })
      .reply(200, []);
    nock(API)
      .post("/repos/o/r/pulls", (b) => {
        created = b;
        return true;
      })
      .reply(201, { number: 12, html_url: "https://github.com/o/r/pull/12" });
    expect(await upsertDraftPr(octokit, input)).toEqual({
      number: 12,
      url: "https://github.com/o/r/pull/12",
      created: true,
    });
    expect(created).toMatchObject({
      draft: true,
      head: "autofix/o-r-7",
      base: "main",
      title: "Fix gather timeout",
    });
  });

  it("updates the open PR of a retried job instead of opening a second", async () => {
    let updated: any;
    nock(API)
      .get("/repos/o/r/pulls")
      .query(true)
      .reply(200, [
        { number: 12, html_url: "https://github.com/o/r/pull/12", head: { ref: "autofix/o-r-7" } },
      ]);
    nock(API)
      .patch("/repos/o/r/pulls/12", (b) => {
        updated = b;
        return true;
      })
      .reply(200, {});
    const token = `ghs_${"x".repeat(40)}`;
    expect(await upsertDraftPr(octokit, { ...input, body: `new body ${token}` })).toEqual({
      number: 12,
      url: "https://github.com/o/r/pull/12",
      created: false,
    });
    expect(updated.body).toBe("new body [REDACTED]");
    expect(nock.isDone()).toBe(true);
  });

  it("keeps a body under GitHub's limit and says it was cut", () => {
    const long = clampBody("x".repeat(MAX_BODY + 10));
    expect(long.length).toBeLessThan(65_536);
    expect(long).toMatch(/truncated/);
  });
});
