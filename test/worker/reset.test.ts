import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createBwrapExecutor } from "../../src/sandbox/bwrap.js";
import { prepareWorkspaceOwnership } from "../../src/sandbox/common.js";
import { createLogger } from "../../src/shared/logger.js";
import { createHostHooks } from "../../src/worker/service.js";
import { backendBinary } from "../sandbox/helpers.js";

/**
 * The card reset after a job: the operator's AUTOFIX_RESET_COMMAND runs on the host; the
 * repository's commands.reset comes from the job's commit, so it is the repository's code and
 * must run in the job's sandbox, with only the job's cards named, never on the host.
 */

const silent = createLogger({ level: "silent" });
const plan = { pool: "n150", cards: 1, concurrency: 1 };

function host(resetCommand?: string) {
  const root = mkdtempSync(join(tmpdir(), "autofix-reset-"));
  chmodSync(root, 0o755);
  const deviceDir = join(root, "dev");
  mkdirSync(deviceDir);
  writeFileSync(join(deviceDir, "0"), "");
  const hooks = createHostHooks(
    {
      deviceDir,
      devices: ["0"],
      ttSmi: null,
      procRoot: join(root, "no-proc"),
      ...(resetCommand ? { resetCommand } : {}),
      env: { PATH: process.env.PATH },
    },
    silent,
    () => {},
  );
  return { root, hooks };
}

describe("the card reset", () => {
  it("the repository's reset command runs in the job's sandbox, and cannot touch the host", async (ctx) => {
    const skip = (await backendBinary("bwrap")).skip;
    if (skip) ctx.skip(skip);
    const { root, hooks } = host();
    const workspace = join(root, "ws");
    mkdirSync(workspace);
    await prepareWorkspaceOwnership(workspace, 65534, 65534);
    const executor = createBwrapExecutor({ workspace, env: {}, cards: [], jobId: "reset" });
    const outside = join(root, "host-was-here");
    await hooks.afterJob(plan, {
      repoResetCommand: `echo "$AUTOFIX_CARDS $(id -u)" > seen; touch ${outside}`,
      cards: ["0"],
      executor,
    });
    await executor.dispose();
    expect(readFileSync(join(workspace, "seen"), "utf8")).toBe("0 65534\n");
    expect(existsSync(outside)).toBe(false);
  });

  it("the operator's reset command runs on the host and wins over the repository's", async () => {
    const target = mkdtempSync(join(tmpdir(), "autofix-reset-host-"));
    const { root, hooks } = host(`echo "$AUTOFIX_CARDS" > ${join(target, "host")}`);
    const ran: string[] = [];
    const executor = {
      kind: "host" as const,
      workspace: root,
      jobEnv: {},
      run: async (c: string | readonly string[]) => {
        ran.push(String(c));
        throw new Error("the job's executor must not run the operator's command");
      },
      killAll: async () => {},
      dispose: async () => {},
    };
    await hooks.afterJob(plan, {
      repoResetCommand: `echo repo > ${join(target, "repo")}`,
      cards: ["0"],
      executor,
    });
    expect(ran).toEqual([]);
    expect(readFileSync(join(target, "host"), "utf8")).toBe("0\n");
    expect(existsSync(join(target, "repo"))).toBe(false);
  });
});
