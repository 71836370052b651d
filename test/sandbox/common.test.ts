import { link, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  assertReachable,
  cardDevices,
  mapCwd,
  prepareWorkspaceOwnership,
  SandboxError,
  sandboxEnv,
} from "../../src/sandbox/common.js";
import { asRoot } from "./helpers.js";

const dirs: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "autofix-sandbox-unit-"));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe("sandboxEnv", () => {
  it("is an allowlist plus the job's and the command's variables, never a secret-looking one", () => {
    const env = sandboxEnv({
      layers: [
        { TT_VISIBLE_DEVICES: "0,1", GH_TOKEN: "x", "BAD-NAME": "y" },
        { TT_VISIBLE_DEVICES: "1", MY_API_KEY: "z" },
      ],
      path: "/usr/bin:/bin",
      locale: "C.UTF-8",
    });
    expect(env).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/home/sandbox",
      USER: "sandbox",
      LOGNAME: "sandbox",
      TMPDIR: "/tmp",
      TERM: "dumb",
      LANG: "C.UTF-8",
      LC_ALL: "C.UTF-8",
      GIT_TERMINAL_PROMPT: "0",
      GIT_ASKPASS: "/bin/false",
      SSH_ASKPASS: "/bin/false",
      GIT_CONFIG_NOSYSTEM: "1",
      TT_VISIBLE_DEVICES: "1",
    });
  });
});

describe("mapCwd and cardDevices", () => {
  it("maps a folder below the workspace to the mount path and refuses anything outside", () => {
    expect(mapCwd("/w/ws", "/w/ws")).toBe("/w/ws");
    expect(mapCwd("/w/ws", "/work", "/w/ws/a/b")).toBe("/work/a/b");
    expect(mapCwd("/w/ws", "/work", "a")).toBe("/work/a");
    expect(() => mapCwd("/w/ws", "/work", "/w/ws-other")).toThrow(SandboxError);
    expect(() => mapCwd("/w/ws", "/work", "/w/ws/../x")).toThrow(SandboxError);
  });

  it("names only plain card nodes", () => {
    expect(cardDevices(["0", "3"], "/dev/tenstorrent", "/dev/tenstorrent")).toEqual([
      { host: "/dev/tenstorrent/0", sandbox: "/dev/tenstorrent/0" },
      { host: "/dev/tenstorrent/3", sandbox: "/dev/tenstorrent/3" },
    ]);
    for (const bad of ["..", "../sda", "a/b", ""]) expect(() => cardDevices([bad])).toThrow(/unsafe card/);
  });
});

describe.skipIf(!asRoot)("prepareWorkspaceOwnership (as root)", () => {
  it("gives every entry to the uid, changes links themselves, and never follows or crosses them", async () => {
    const root = await temp();
    const ws = join(root, "ws");
    const outside = join(root, "outside");
    await mkdir(join(ws, "a", "b"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(ws, "a", "b", "f"), "x");
    await writeFile(join(outside, "secret"), "s");
    await symlink(outside, join(ws, "link-to-dir"));
    await symlink(join(outside, "secret"), join(ws, "link-to-file"));
    // A hard link to a file outside: changing it would change the outside file.
    await link(join(outside, "secret"), join(ws, "hard"));
    const r = await prepareWorkspaceOwnership(ws, 65534, 65534);
    for (const p of [ws, join(ws, "a"), join(ws, "a", "b"), join(ws, "a", "b", "f")]) {
      expect((await lstat(p)).uid).toBe(65534);
    }
    expect((await lstat(join(ws, "link-to-dir"))).uid).toBe(65534);
    expect((await lstat(join(ws, "link-to-file"))).uid).toBe(65534);
    expect((await stat(outside)).uid).toBe(0);
    expect((await stat(join(outside, "secret"))).uid).toBe(0);
    expect(r.skipped).toEqual([join(ws, "hard")]);
    expect((await prepareWorkspaceOwnership(ws, 65534, 65534)).changed).toBe(0);
  });

  it("assertReachable says which folder the sandbox uid cannot search", async () => {
    const root = await temp(); // 0700, root's
    await mkdir(join(root, "ws"));
    await expect(assertReachable(join(root, "ws"), 65534, [65534])).rejects.toThrow(
      /cannot reach .* mode 700/,
    );
    await expect(assertReachable(join(root, "ws"), 0, [])).resolves.toBeUndefined();
  });
});
