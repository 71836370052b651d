/**
 * The pool names: which queue a job travels on, so the web process and the workers must agree
 * on them. The catalogue that says what each pool needs (cards, boards) is src/config/pools.ts,
 * which is checked against this list.
 */
const NAMES = ["cpu", "n150", "n300", "t3k", "galaxy", "p100", "p150", "p300"] as const;

export type PoolName = (typeof NAMES)[number];

export const POOL_NAMES: readonly string[] = NAMES;
