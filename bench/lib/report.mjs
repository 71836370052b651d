// Machine-readable results for bench/run-all.mjs: every bench ends with one line
//   BENCH_JSON {"bench":"name","figures":[{figure, value, baseline, goal, met}], ...}
// `value` and `baseline` are display strings; `met` is true, false or null (no goal).

export const BENCH_JSON = "BENCH_JSON";

export function reportJson(bench, figures, extra = {}) {
  console.log(`${BENCH_JSON} ${JSON.stringify({ bench, figures, ...extra })}`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const fmtMs = (ms) =>
  ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
