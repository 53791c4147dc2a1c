/** Scrapes a `/metrics` endpoint and parses it with a Prometheus text-format parser (not our code). */
// @ts-expect-error: the parser ships no type declarations; its output is typed below.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export interface MetricFamily {
  name: string;
  help: string;
  type: 'GAUGE' | 'COUNTER' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: { value?: string; labels?: Record<string, string> }[];
}

export interface Scrape {
  families: Map<string, MetricFamily>;
  /** The value of `name` with exactly these labels (a subset match), or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every series of `name`, keyed by one label's value. */
  byLabel(name: string, label: string): Map<string, number>;
}

export function parseMetrics(text: string): Scrape {
  const families = new Map<string, MetricFamily>();
  for (const family of (parsePrometheusTextFormat as (text: string) => MetricFamily[])(text)) families.set(family.name, family);
  const matches = (metric: MetricFamily['metrics'][number], labels: Record<string, string>) =>
    Object.entries(labels).every(([key, value]) => metric.labels?.[key] === value);
  return {
    families,
    value(name, labels = {}) {
      const metric = families.get(name)?.metrics.find((m) => matches(m, labels));
      return metric?.value === undefined ? undefined : Number(metric.value);
    },
    byLabel(name, label) {
      const map = new Map<string, number>();
      for (const metric of families.get(name)?.metrics ?? []) if (metric.labels?.[label] !== undefined) map.set(metric.labels[label]!, Number(metric.value));
      return map;
    },
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return parseMetrics(await response.text());
}
