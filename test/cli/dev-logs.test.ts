import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, wantsPrettyLogs } from "../../src/shared/logger.js";

/** Development logs (the web process and the worker in a terminal) are lines a person reads. */

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { chunks, stream };
}

describe("development logs", () => {
  it("pretty in a terminal outside production; JSON in production, in a pipe, or when LOG_FORMAT says", () => {
    expect(wantsPrettyLogs({}, true)).toBe(true);
    expect(wantsPrettyLogs({ NODE_ENV: "development" }, true)).toBe(true);
    expect(wantsPrettyLogs({ NODE_ENV: "production" }, true)).toBe(false);
    expect(wantsPrettyLogs({}, false)).toBe(false);
    expect(wantsPrettyLogs({ LOG_FORMAT: "json" }, true)).toBe(false);
    expect(wantsPrettyLogs({ LOG_FORMAT: "pretty", NODE_ENV: "production" }, false)).toBe(true);
  });

  it("a pretty line has the message and its fields, not a request's headers, and is still redacted", () => {
    const token = `ghs_${"Zx9".repeat(20)}`;
    const { chunks, stream } = capture();
    const log = createLogger({ destination: stream, pretty: true, level: "info", name: "autofix-web" });
    log.info(
      {
        req: {
          method: "POST",
          url: "/api/github/webhooks",
          headers: { "x-github-event": "issue_comment", cookie: "c" },
        },
        res: { statusCode: 200, headers: { "content-type": "text/plain" } },
        responseTime: 3,
      },
      "POST /api/github/webhooks 200 - 3ms",
    );
    log.warn({ job: "42" }, `pushing with ${token}`);
    const text = chunks.join("");
    expect(text).toContain("POST /api/github/webhooks 200 - 3ms");
    expect(text).toMatch(/WARN.*pushing with \[REDACTED\]/);
    expect(text).toMatch(/job: "42"/);
    expect(text).not.toContain("x-github-event");
    expect(text).not.toContain("content-type");
    expect(text).not.toContain(token);
    // Not JSON.
    expect(text.trimStart().startsWith("{")).toBe(false);
  });

  it("a logger given a destination stays JSON unless asked (what tests read back)", () => {
    const { chunks, stream } = capture();
    createLogger({ destination: stream, level: "info" }).info("hello");
    expect(JSON.parse(chunks[0]!)).toMatchObject({ msg: "hello" });
  });
});
