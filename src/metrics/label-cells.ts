/**
 * Counters and histograms whose hot path is a field increment. prom-client's own label children
 * hash and validate their label values on every `inc` and `observe`; these keep one cell per
 * label combination (found once, kept by the caller) and hand prom-client's registry plain values
 * when it is scraped (a registered metric only needs `name`, `help`, `type` and `get()`).
 */

type Labels = Record<string, string>;
type MetricValue = { value: number; labels: Labels; metricName?: string };
type MetricSnapshot = { name: string; help: string; type: "counter" | "histogram"; aggregator: "sum"; values: MetricValue[] };

export class CounterCell {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class HistogramCell {
  sum = 0;
  count = 0;
  /** Observations per bucket (not cumulative); the last one is `+Inf`. */
  readonly buckets: Float64Array;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    const { bounds } = this;
    let at = 0;
    while (at < bounds.length && value > (bounds[at] as number)) at += 1;
    this.buckets[at] = (this.buckets[at] as number) + 1;
    this.sum += value;
    this.count += 1;
  }
}

abstract class LabelledMetric<Cell extends { labels: Labels }> {
  readonly aggregator = "sum";
  readonly #cells = new Map<string, Cell>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  /** The cell of these label values (in `labelNames` order), made on first use. Keep it: finding it costs a string join. */
  cell(...values: string[]): Cell {
    const key = values.join("\u0000");
    let cell = this.#cells.get(key);
    if (cell === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((name, index) => {
        labels[name] = values[index] ?? "";
      });
      cell = this.make(labels);
      this.#cells.set(key, cell);
    }
    return cell;
  }

  protected cells(): IterableIterator<Cell> {
    return this.#cells.values();
  }

  protected abstract make(labels: Labels): Cell;
}

export class LabelledCounter extends LabelledMetric<CounterCell> {
  readonly type = "counter";
  protected make(labels: Labels): CounterCell {
    return new CounterCell(labels);
  }
  get(): MetricSnapshot {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.cells()].map((cell) => ({ value: cell.value, labels: cell.labels })) };
  }
}

export class LabelledHistogram extends LabelledMetric<HistogramCell> {
  readonly type = "histogram";
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected make(labels: Labels): HistogramCell {
    return new HistogramCell(labels, this.bounds);
  }
  get(): MetricSnapshot {
    const values: MetricValue[] = [];
    for (const cell of this.cells()) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += cell.buckets[index] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: String(bound), ...cell.labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf", ...cell.labels }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels: cell.labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels: cell.labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
