import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/shared/logger.js";
import { redactor } from "../../src/shared/redact.js";

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, stream };
}

describe("logger", () => {
  it("never writes a token, whether in the message, a field or an error", () => {
    const token = `ghs_${"Ab1".repeat(20)}`;
    const { lines, stream } = capture();
    const log = createLogger({ destination: stream, level: "info" });
    log.info(`cloning with ${token}`);
    log.info({ headers: { authorization: `token ${token}` } }, "request");
    log.error({ err: new Error(`push failed for https://x-access-token:${token}@github.com/o/r`) }, "push");
    const all = lines.join("");
    expect(lines).toHaveLength(3);
    expect(all).not.toContain(token);
    expect(all).toContain("cloning with [REDACTED]");
  });

  it("redacts live secrets registered after the logger was made", () => {
    const { lines, stream } = capture();
    const log = createLogger({ destination: stream });
    redactor.addSecret("minted-at-runtime-xyz");
    log.warn("value minted-at-runtime-xyz here");
    redactor.removeSecret("minted-at-runtime-xyz");
    expect(lines.join("")).toContain("value [REDACTED] here");
  });
});
