import { describe, expect, it } from "vitest";
import { type DoctorDeps, runDoctor } from "../../src/cli/commands/doctor.js";

const KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";

function deps(over: Partial<DoctorDeps> = {}): DoctorDeps {
  return {
    env: { APP_ID: "7", PRIVATE_KEY: KEY, ANTHROPIC_API_KEY: "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
    nodeVersion: "v22.11.0",
    gitVersion: async () => "git version 2.39.5",
    redis: async () => null,
    app: async () => "autofix-tt",
    model: async () => {},
    hardware: async () => ({
      deviceDir: "/dev/tenstorrent",
      devices: ["0", "1"],
      ttSmi: "/usr/bin/tt-smi",
      boards: ["n300", "n300"],
    }),
    ...over,
  };
}

describe("autofix doctor", () => {
  it("prints one ok line per part of a healthy TT host", async () => {
    const lines = await runDoctor(deps());
    expect(lines.map((l) => [l.level, l.name])).toEqual([
      ["ok", "node"],
      ["ok", "git"],
      ["ok", "redis"],
      ["ok", "github app"],
      ["ok", "anthropic"],
      ["ok", "tt cards"],
    ]);
    expect(lines.find((l) => l.name === "github app")?.detail).toBe(
      "authenticated as autofix-tt (app 7) on https://api.github.com",
    );
    expect(lines.find((l) => l.name === "tt cards")?.detail).toMatch(
      /^2 device node\(s\) in \/dev\/tenstorrent; /,
    );
  });

  it("names what is broken, in words a person can act on", async () => {
    const lines = await runDoctor(
      deps({
        nodeVersion: "v20.10.0",
        redis: async () => "connection refused at 127.0.0.1:6379",
        app: async () => {
          throw new Error("A JSON web token could not be decoded");
        },
        model: async () => {
          throw Object.assign(new Error("not found"), { status: 404 });
        },
        hardware: async () => ({ deviceDir: "/dev/tenstorrent", devices: [], ttSmi: null, boards: null }),
      }),
    );
    const byName = Object.fromEntries(lines.map((l) => [l.name, l]));
    expect(byName.node).toMatchObject({ level: "fail", detail: "v20.10.0 (needs 20.18.1 or newer)" });
    expect(byName.redis).toMatchObject({
      level: "fail",
      detail: "cannot reach redis://127.0.0.1:6379: connection refused at 127.0.0.1:6379",
    });
    expect(byName["github app"]?.level).toBe("fail");
    expect(byName.anthropic).toMatchObject({ level: "fail", detail: "model claude-sonnet-5 does not exist" });
    expect(byName["tt cards"]).toMatchObject({
      level: "warn",
      detail: expect.stringMatching(/cpu pool only/),
    });
  });

  it("warns, not fails, when App credentials are absent (local runs need none)", async () => {
    const lines = await runDoctor(deps({ env: { ANTHROPIC_API_KEY: "k" } }));
    expect(lines.find((l) => l.name === "github app")).toMatchObject({ level: "warn" });
    const noKey = await runDoctor(deps({ env: {} }));
    expect(noKey.find((l) => l.name === "anthropic")).toMatchObject({
      level: "fail",
      detail: expect.stringMatching(/ANTHROPIC_API_KEY is not set/),
    });
  });

  it("looks for cards in AUTOFIX_DEVICE_DIR and accepts ANTHROPIC_AUTH_TOKEN, both from the settings", async () => {
    const asked: string[] = [];
    const lines = await runDoctor(
      deps({
        env: { AUTOFIX_DEVICE_DIR: "/srv/tt", ANTHROPIC_AUTH_TOKEN: "token" },
        hardware: async (deviceDir) => {
          asked.push(deviceDir);
          return { deviceDir, devices: [], ttSmi: null, boards: null };
        },
      }),
    );
    expect(asked).toEqual(["/srv/tt"]);
    expect(lines.find((l) => l.name === "anthropic")?.level).toBe("ok");
  });
});
