import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: "forks",
    // Tests share one Redis; each test file uses its own key prefix, so files may run in parallel.
    fileParallelism: true,
    restoreMocks: true,
  },
});
