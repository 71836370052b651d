import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { protocolArgs, remoteGit } from "../../src/git/remote.js";

/**
 * The service's git talks only https to GitHub (http for a GHE on http, file for a local
 * remote): a URL or a config that would run a command (ext::) or use another transport is
 * refused by git itself.
 */
describe("protocols of the service's git", () => {
  it("refuses ext:: and ssh even when asked to, and allows what the remote needs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "autofix-proto-"));
    const marker = join(dir, "ran");
    const r = await remoteGit(["ls-remote", `ext::sh -c touch% ${marker}`], {
      helperPath: join(dir, "helper"),
      remoteUrl: "https://github.com/acme/widget.git",
      timeoutMs: 20_000,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/transport 'ext' not allowed/);
    expect(existsSync(marker)).toBe(false);
    expect(protocolArgs("https://github.com/a/b.git")).toEqual([
      "-c",
      "protocol.allow=never",
      "-c",
      "protocol.https.allow=always",
    ]);
    expect(protocolArgs("http://ghe.internal/a/b.git")).toContain("protocol.http.allow=always");
    expect(protocolArgs("file:///tmp/remote")).toContain("protocol.file.allow=always");
    expect(protocolArgs("https://github.com/a/b.git")).not.toContain("protocol.ssh.allow=always");
  });
});
