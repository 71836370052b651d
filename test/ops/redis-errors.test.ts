import { describe, expect, it } from "vitest";
import { type DoctorDeps, runDoctor } from "../../src/cli/commands/doctor.js";
import type { RedisEndpoint } from "../../src/config/redis-topology.js";
import {
  checkRedis,
  describeRedisEndpoint,
  describeRedisError,
  displayRedisUrl,
} from "../../src/queue/redis.js";
import { freePort } from "./redis-server.js";

const errno = (code: string, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { code, ...extra });

describe("describeRedisError: the address and the cause, in words", () => {
  const url = "redis://127.0.0.1:6379";

  it("names a refused connection at the address the socket tried", () => {
    const err = errno("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:6379", {
      address: "127.0.0.1",
      port: 6379,
    });
    expect(describeRedisError(err, url)).toBe("connection refused at 127.0.0.1:6379");
    // The code alone (no address on the error): the endpoint's address.
    expect(describeRedisError(errno("ECONNREFUSED", "x"), "redis://db:7000")).toBe(
      "connection refused at db:7000",
    );
  });

  it("names an unknown host", () => {
    const err = errno("ENOTFOUND", "getaddrinfo ENOTFOUND redis.internal", { hostname: "redis.internal" });
    expect(describeRedisError(err, "redis://redis.internal:6379")).toBe("host not found: redis.internal");
    expect(describeRedisError(new Error("getaddrinfo ENOTFOUND redis.internal"), "redis://x")).toBe(
      "host not found: redis.internal",
    );
  });

  it("says how long it waited", () => {
    expect(
      describeRedisError(errno("ETIMEDOUT", "connect ETIMEDOUT"), "redis://10.0.0.5", { timeoutMs: 5000 }),
    ).toBe("timed out after 5 s connecting to 10.0.0.5:6379");
    expect(
      describeRedisError(new Error("connecting to Redis took longer than 2000 ms"), url, { timeoutMs: 2000 }),
    ).toBe("timed out after 2 s connecting to 127.0.0.1:6379");
  });

  it("never shows ioredis' closed-socket messages", () => {
    for (const m of [
      "Connection is closed.",
      "Stream isn't writeable and enableOfflineQueue options is false",
    ])
      expect(describeRedisError(new Error(m), url)).toBe("no connection to 127.0.0.1:6379");
  });

  it("tells a password problem and a server that is not Redis apart", () => {
    expect(
      describeRedisError(new Error("WRONGPASS invalid username-password pair or user is disabled."), url),
    ).toMatch(
      /^authentication failed at 127\.0\.0\.1:6379: WRONGPASS .* \(check the user and password in REDIS_URL\)$/,
    );
    expect(describeRedisError(new Error('Unknown RESP type 72 "H". Please report this.'), url)).toBe(
      'something other than Redis answered at 127.0.0.1:6379 (Unknown RESP type 72 "H")',
    );
  });

  it("names Sentinel and Cluster endpoints by their nodes", () => {
    const sentinel: RedisEndpoint = {
      url,
      topology: {
        kind: "sentinel",
        name: "mymaster",
        sentinels: [
          { host: "s1", port: 26379 },
          { host: "s2", port: 26379 },
        ],
      },
    };
    expect(describeRedisEndpoint(sentinel)).toBe("sentinels s1:26379,s2:26379 (master mymaster)");
    expect(describeRedisError(new Error("All sentinels are unreachable. Retrying..."), sentinel)).toBe(
      "no sentinel answers: sentinels s1:26379,s2:26379 (master mymaster)",
    );
    const cluster: RedisEndpoint = {
      url,
      topology: { kind: "cluster", nodes: [{ host: "::1", port: 7000 }] },
    };
    expect(describeRedisError(new Error("Failed to refresh slots cache."), cluster)).toBe(
      "no cluster node answers: cluster nodes [::1]:7000",
    );
  });

  it("keeps an unknown message, with the address", () => {
    expect(describeRedisError(new Error("ERR something odd"), url)).toBe(
      "ERR something odd (at 127.0.0.1:6379)",
    );
  });

  it("displayRedisUrl hides the password", () => {
    expect(displayRedisUrl("redis://:hunter22@db:6379/2")).toBe("redis://:[REDACTED]@db:6379/2");
    expect(displayRedisUrl("rediss://app:hunter22@db")).toBe("rediss://app:[REDACTED]@db");
    expect(displayRedisUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
  });
});

describe("a dead port, through the real code path", () => {
  it("checkRedis says the connection was refused at that address", async () => {
    const port = await freePort();
    expect(await checkRedis(`redis://127.0.0.1:${port}`)).toBe(`connection refused at 127.0.0.1:${port}`);
  });

  it("autofix doctor names the URL it could not reach, password redacted", async () => {
    const port = await freePort();
    const deps: DoctorDeps = {
      env: { REDIS_URL: `redis://:s3cret-pass-1234@127.0.0.1:${port}` },
      nodeVersion: "v22.11.0",
      gitVersion: async () => "git version 2.39.5",
      redis: (endpoint) => checkRedis(endpoint),
      app: async () => "x",
      model: async () => {},
      hardware: async () => ({ deviceDir: "/dev/tenstorrent", devices: [], ttSmi: null, boards: null }),
    };
    const line = (await runDoctor(deps)).find((l) => l.name === "redis");
    expect(line).toEqual({
      level: "fail",
      name: "redis",
      detail: `cannot reach redis://:[REDACTED]@127.0.0.1:${port}: connection refused at 127.0.0.1:${port}`,
    });
  });
});
