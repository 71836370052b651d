import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readRunConfig } from "../../src/config/run-config.js";
import { codeOwners, committedFiles } from "../../src/publish/developers.js";
import { createHostExecutor } from "../../src/sandbox/host.js";
import { makeRepo, type TestRepo } from "../agent/repo.js";

/**
 * The service reads a few files of the job's commit on the host: the repository config, the
 * CODEOWNERS, the reproduction test for the PR body. A commit may hold links to host files
 * (a PR author's, or the model's own commit); none of them may be followed.
 */

const SECRET = "s3cret-host-file-content";
let repo: TestRepo | undefined;
afterEach(async () => {
  await repo?.cleanup();
  repo = undefined;
});

async function secretFile(r: TestRepo): Promise<string> {
  const p = path.join(r.outside, "secret.txt");
  await writeFile(p, `* @${SECRET}\nKEY=${SECRET}\n`);
  return p;
}

describe("files of the job's commit that are links", () => {
  it("a linked .github/autofix.yml, or a linked .github folder, is refused without reading the target", async () => {
    let target = "";
    repo = await makeRepo({ "a.txt": "a\n" }, async (dir) => {
      target = path.join(path.dirname(dir), "outside", "secret.txt");
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, `budgets: ${SECRET}\n`);
      await mkdir(path.join(dir, ".github"));
      await symlink(target, path.join(dir, ".github", "autofix.yml"));
    });
    const err = await readRunConfig(repo.dir).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(".github/autofix.yml is a symbolic link; it must be a regular file");
    await repo.cleanup();

    repo = await makeRepo({ "a.txt": "a\n" }, async (dir) => {
      const folder = path.join(path.dirname(dir), "outside");
      await mkdir(folder, { recursive: true });
      await writeFile(path.join(folder, "autofix.yml"), `budgets: ${SECRET}\n`);
      await symlink(folder, path.join(dir, ".github"));
    });
    const err2 = await readRunConfig(repo.dir).catch((e: Error) => e);
    expect((err2 as Error).message).toMatch(/^\.github is not a folder/);
    expect((err2 as Error).message).not.toContain(SECRET);
  });

  it("a linked CODEOWNERS names nobody, and a link in the test folder is left out of the PR's test files", async () => {
    let secret = "";
    repo = await makeRepo(
      {
        "src/add.sh": "echo\n",
        "autofix-tests/t/run_test.sh": "exit 1\n",
        "autofix-tests/t/README.md": "t\n",
      },
      async (dir) => {
        secret = await secretFile({ dir, outside: path.join(path.dirname(dir), "outside") } as TestRepo);
        await symlink(secret, path.join(dir, "CODEOWNERS"));
        await symlink(secret, path.join(dir, "autofix-tests", "t", "leak.txt"));
      },
    );
    const exec = createHostExecutor({ workspace: repo.dir, env: {}, cards: [], jobId: "links" });
    expect(await codeOwners(exec, "HEAD", ["src/add.sh"])).toEqual([]);
    const files = await committedFiles(exec, "HEAD", "autofix-tests/t");
    expect(files.map((f) => f.path).sort()).toEqual([
      "autofix-tests/t/README.md",
      "autofix-tests/t/run_test.sh",
    ]);
    expect(JSON.stringify(files)).not.toContain(SECRET);
    await exec.dispose();
  });
});
