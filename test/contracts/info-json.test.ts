import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadInfoJson, validateInfoJson } from "../../src/contracts/info-json.js";

const URL = "https://github.com/tenstorrent/tt-metal/actions/runs/12345";

describe("info.json (the original framework's input)", () => {
  it("accepts the seed's examples unchanged", () => {
    const det = validateInfoJson({
      deterministic: true,
      url: URL,
      prompt: "This test fails because gather with wide tensors times out. Fix the underlying operation.",
      "raw-logs": "",
      "existing-test-path": "",
    });
    expect(det).toMatchObject({ ok: true, request: { deterministic: true, url: URL } });
    const nd = validateInfoJson({
      deterministic: false,
      url: "",
      prompt: "Reduce scatter occasionally hangs on T3K.",
      "raw-logs": "TT_THROW: TIMEOUT: device timeout",
    });
    expect(nd).toMatchObject({
      ok: true,
      request: { deterministic: false, rawLogs: "TT_THROW: TIMEOUT: device timeout" },
    });
  });

  it('rejects "deterministic" given as a string, clearly (the original always misread it)', () => {
    const r = validateInfoJson({ deterministic: "true", url: URL, prompt: "x" });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      expect.stringMatching(/"deterministic" must be true or false without quotes; got the string "true"/),
    ]);
  });

  it("reports every violation at once", () => {
    const r = validateInfoJson({ url: "", prompt: "  ", "raw-logs": "" });
    expect(!r.ok && r.problems).toEqual([
      expect.stringMatching(/^"deterministic" is required/),
      expect.stringMatching(/^"prompt" is required/),
      expect.stringMatching(/^give a log source: "url" .* or "raw-logs"/),
    ]);
  });

  it("lets url win over raw-logs, and says so", () => {
    const r = validateInfoJson({ deterministic: true, url: URL, prompt: "p", "raw-logs": "pasted" });
    expect(r.ok && r.request.rawLogs).toBeUndefined();
    expect(r.notes).toContain(
      'both "url" and "raw-logs" are given: the logs are fetched from "url" and "raw-logs" is not used',
    );
  });

  it("rejects a url that is not an Actions run or job", () => {
    const r = validateInfoJson({ deterministic: true, url: "https://example.com/foo", prompt: "p" });
    expect(!r.ok && r.problems[0]).toMatch(/"url" must be a GitHub Actions run or job URL/);
  });

  it("checks existing-test-path exists inside the repository and skips reproduction", () => {
    const repo = mkdtempSync(join(tmpdir(), "autofix-info-"));
    mkdirSync(join(repo, "tests"));
    writeFileSync(join(repo, "tests", "test_gather.py"), "def test(): pass\n");
    const ok = validateInfoJson(
      { deterministic: true, url: URL, prompt: "p", "existing-test-path": "tests/test_gather.py" },
      { repoRoot: repo },
    );
    expect(ok).toMatchObject({ ok: true, request: { existingTestPath: "tests/test_gather.py" } });
    expect(ok.notes).toContain("an existing test is given: the reproduction phase is skipped");
    const missing = validateInfoJson(
      { deterministic: true, url: URL, prompt: "p", "existing-test-path": "tests/nope.py" },
      { repoRoot: repo },
    );
    expect(!missing.ok && missing.problems[0]).toMatch(/"existing-test-path" does not exist/);
    const outside = validateInfoJson(
      { deterministic: true, url: URL, prompt: "p", "existing-test-path": "../etc/passwd" },
      { repoRoot: repo },
    );
    expect(!outside.ok && outside.problems[0]).toMatch(/must be inside the repository/);
  });

  it("names unknown fields with a hint, and reports unreadable or non-JSON files", () => {
    const r = validateInfoJson({ deterministic: true, url: URL, prompt: "p", raw_logs: "x" });
    expect(r.notes).toContain('unknown field "raw_logs" ignored (did you mean "raw-logs"?)');
    const dir = mkdtempSync(join(tmpdir(), "autofix-info-"));
    writeFileSync(join(dir, "info.json"), "{ deterministic: true }");
    expect(loadInfoJson(join(dir, "info.json"))).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/is not valid JSON/)],
    });
    expect(loadInfoJson(join(dir, "absent.json"))).toMatchObject({
      ok: false,
      problems: [expect.stringMatching(/ENOENT/)],
    });
  });

  it('"allow-test-changes" must be a boolean, and true lets the fix change tests', () => {
    const base = { deterministic: true, prompt: "p", "raw-logs": "x" };
    const ok = validateInfoJson({ ...base, "allow-test-changes": true });
    expect(ok).toMatchObject({ ok: true, request: { allowTestChanges: true } });
    expect(validateInfoJson(base)).toMatchObject({ ok: true });
    expect(validateInfoJson(base).ok && validateInfoJson(base)).not.toHaveProperty(
      "request.allowTestChanges",
    );
    expect(validateInfoJson({ ...base, "allow-test-changes": "yes" })).toMatchObject({
      ok: false,
      problems: ['"allow-test-changes" must be true or false; got "yes"'],
    });
  });
});
