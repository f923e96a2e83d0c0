/** Medians, tables and ratios for docs/benchmarks.md. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length === 0
      ? Number.NaN
      : sorted.length % 2
        ? (sorted[mid] as number)
        : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, n: sorted.length };
}

export function median(values: readonly number[]): number {
  return stats(values).median;
}

export function seconds(ms: number): string {
  return Number.isNaN(ms) ? "–" : (ms / 1000).toFixed(2);
}

export function row(name: string, values: readonly number[]): string {
  const s = stats(values);
  return `| ${name} | ${s.n} | ${seconds(s.median)} | ${seconds(s.min)} | ${seconds(s.max)} |`;
}

export const HEADER = "| | n | median s | min s | max s |\n|---|---|---|---|---|";

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–";
}

/** Values recorded under names, in first-seen order. */
export class Samples {
  private readonly map = new Map<string, number[]>();

  add(name: string, value: number): void {
    const list = this.map.get(name);
    if (list) list.push(value);
    else this.map.set(name, [value]);
  }

  get(name: string): number[] {
    return this.map.get(name) ?? [];
  }

  median(name: string): number {
    return median(this.get(name));
  }

  rows(): string[] {
    return [...this.map.entries()].map(([name, values]) => row(name, values));
  }
}
