/**
 * Hardware pools. A pool is a kind of machine a job needs: a queue per pool, and workers serve
 * the pools their cards allow. The catalogue follows the TT SKUs used in CI. The names are the
 * job contract's (src/contracts/pools.ts); every one has exactly one entry here.
 */
import { POOL_NAMES, type PoolName } from "../contracts/pools.js";

export { POOL_NAMES };

export interface PoolSpec {
  name: string;
  description: string;
  /** Architecture of the cards, or null for the cpu pool. */
  arch: "wormhole_b0" | "blackhole" | null;
  /** Device nodes under /dev/tenstorrent a host needs to serve this pool (0 for cpu). */
  cards: number;
  /** Card model names tt-smi reports for this pool (matched case-insensitively), if known. */
  boards: string[];
}

export const POOLS: readonly PoolSpec[] = [
  {
    name: "cpu",
    description: "no card needed (builds, simulator, CPU-only tests)",
    arch: null,
    cards: 0,
    boards: [],
  },
  { name: "n150", description: "N150, one Wormhole chip", arch: "wormhole_b0", cards: 1, boards: ["n150"] },
  { name: "n300", description: "N300, two Wormhole chips", arch: "wormhole_b0", cards: 1, boards: ["n300"] },
  {
    name: "t3k",
    description: "T3K / LLMBox, four N300 cards",
    arch: "wormhole_b0",
    cards: 4,
    boards: ["n300"],
  },
  {
    name: "galaxy",
    description: "Galaxy, 32 chips",
    arch: "wormhole_b0",
    cards: 32,
    boards: ["galaxy", "tt-galaxy-wh", "tt-galaxy-bh"],
  },
  {
    name: "p100",
    description: "P100, one Blackhole chip",
    arch: "blackhole",
    cards: 1,
    boards: ["p100", "p100a"],
  },
  {
    name: "p150",
    description: "P150, one Blackhole chip",
    arch: "blackhole",
    cards: 1,
    boards: ["p150", "p150a", "p150b", "p150c"],
  },
  {
    name: "p300",
    description: "P300, two Blackhole chips",
    arch: "blackhole",
    cards: 1,
    boards: ["p300", "p300a", "p300b", "p300c"],
  },
] satisfies ReadonlyArray<PoolSpec & { name: PoolName }>;

export function findPool(name: string): PoolSpec | undefined {
  return POOLS.find((p) => p.name === name);
}

/** One rule of the runner-label to pool mapping: all of `labels` present, or `pattern` matching one label. */
export interface PoolRule {
  pool: string;
  labels?: string[];
  pattern?: string;
}

/**
 * Default mapping from `runs-on` labels to pools, most specific first: a T3K job also carries
 * `arch-wormhole_b0`, so the T3K and Galaxy rules must come before any single-card rule.
 */
export const DEFAULT_POOL_RULES: PoolRule[] = [
  { pool: "galaxy", labels: ["topology-6u"] },
  { pool: "t3k", labels: ["config-t3000"] },
  { pool: "n150", pattern: "^tt-ubuntu-\\d+-N150(-|$)" },
  { pool: "n300", pattern: "^tt-ubuntu-\\d+-N300(-|$)" },
  { pool: "p150", pattern: "^tt-ubuntu-\\d+-P150" },
  { pool: "p300", pattern: "^tt-ubuntu-\\d+-P300" },
  { pool: "p100", pattern: "^tt-ubuntu-\\d+-P100" },
  { pool: "n150", labels: ["N150"] },
  { pool: "n300", labels: ["N300"] },
  { pool: "p150", labels: ["P150"] },
  { pool: "p150", labels: ["P150b"] },
  { pool: "p100", labels: ["P100"] },
  { pool: "p300", labels: ["P300-viommu"] },
  { pool: "p300", labels: ["P300"] },
];

/** Pick the pool for a job's runner labels; the first matching rule wins, else the fallback. */
export function poolForRunnerLabels(
  labels: readonly string[],
  rules: readonly PoolRule[],
  fallback: string,
): string {
  const have = new Set(labels);
  for (const rule of rules) {
    if (rule.labels && rule.labels.length > 0 && rule.labels.every((l) => have.has(l))) return rule.pool;
    if (rule.pattern) {
      const re = new RegExp(rule.pattern);
      if (labels.some((l) => re.test(l))) return rule.pool;
    }
  }
  return fallback;
}
