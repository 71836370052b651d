import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

/** The Redis the tests use: REDIS_URL from the environment (.ci/run exports it) or the local default. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A key prefix of its own for each test, so test files can run in parallel on one Redis. */
export function uniquePrefix(label = "t"): string {
  return `autofix-test-${label}-${randomBytes(4).toString("hex")}`;
}

/** Delete every key under a prefix (BullMQ keys look like `<prefix>:<queue>:...`). */
export async function dropPrefix(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}
