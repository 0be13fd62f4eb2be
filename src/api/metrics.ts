/**
 * Prometheus metrics in the text exposition format (version 0.0.4), without a client
 * library: request counters and a latency histogram per operation, plus gauges the
 * control plane computes when scraped (jobs by state, connectors by health, …).
 */

/** Latency buckets in seconds: fine below 50 ms (the p99 target), coarse above. */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface GaugeSample {
  readonly name: string;
  readonly help: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export type GaugeSource = () => Promise<readonly GaugeSample[]>;

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export class ApiMetrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #started = Date.now();
  readonly #gauges: GaugeSource[] = [];

  addGauges(source: GaugeSource): void {
    this.#gauges.push(source);
  }

  observe(operation: string, status: number, errorType: string | undefined, seconds: number): void {
    const key = labels({ operation, status: String(status), error: errorType ?? '' });
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let h = this.#latency.get(operation);
    if (!h) {
      h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(operation, h);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] as number)) h.counts[i]! += 1;
    h.sum += seconds;
    h.count += 1;
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    lines.push('# HELP ferry_api_requests_total SMS API requests by operation, HTTP status and error type.');
    lines.push('# TYPE ferry_api_requests_total counter');
    for (const [k, v] of this.#requests) lines.push(`ferry_api_requests_total{${k}} ${v}`);
    lines.push('# HELP ferry_api_request_duration_seconds SMS API request latency by operation.');
    lines.push('# TYPE ferry_api_request_duration_seconds histogram');
    for (const [op, h] of this.#latency) {
      BUCKETS.forEach((b, i) =>
        lines.push(
          `ferry_api_request_duration_seconds_bucket{${labels({ operation: op, le: String(b) })}} ${h.counts[i]}`,
        ),
      );
      lines.push(
        `ferry_api_request_duration_seconds_bucket{${labels({ operation: op, le: '+Inf' })}} ${h.count}`,
      );
      lines.push(`ferry_api_request_duration_seconds_sum{${labels({ operation: op })}} ${h.sum}`);
      lines.push(`ferry_api_request_duration_seconds_count{${labels({ operation: op })}} ${h.count}`);
    }
    lines.push('# HELP ferry_process_uptime_seconds Seconds since the server started.');
    lines.push('# TYPE ferry_process_uptime_seconds gauge');
    lines.push(`ferry_process_uptime_seconds ${(Date.now() - this.#started) / 1000}`);
    const seen = new Set<string>();
    for (const source of this.#gauges) {
      for (const g of await source()) {
        if (!seen.has(g.name)) {
          seen.add(g.name);
          lines.push(`# HELP ${g.name} ${g.help}`);
          lines.push(`# TYPE ${g.name} gauge`);
        }
        lines.push(g.labels ? `${g.name}{${labels(g.labels)}} ${g.value}` : `${g.name} ${g.value}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

function labels(l: Readonly<Record<string, string>>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
}
