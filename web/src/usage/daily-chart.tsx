import type { UsageReport } from "keyport/client";
import { formatCount, formatUsd } from "../ui/format.js";

export type ChartMetric = "cost" | "tokens";

type Row = UsageReport["series"][number];

const WIDTH = 640;
const HEIGHT = 200;
const PADDING = { top: 12, right: 8, bottom: 4, left: 8 };

/**
 * Daily estimated cost or tokens as bars (SVG, no script-generated styles), with a caption that
 * says the same in words and a table of the numbers for anyone who cannot see the chart.
 */
export function DailyChart({ days, series, metric }: { days: readonly string[]; series: readonly Row[]; metric: ChartMetric }) {
  const byDay = new Map(series.map((row) => [row.group, row]));
  const valueOf = (row: Row | undefined) => (row === undefined ? 0 : metric === "cost" ? row.estimatedCostUsd : row.inputTokens + row.outputTokens);
  const format = (value: number) => (metric === "cost" ? formatUsd(value) : `${formatCount(value)} tokens`);
  const values = days.map((day) => valueOf(byDay.get(day)));
  const max = Math.max(...values, 0);
  const total = values.reduce((sum, value) => sum + value, 0);
  const plotWidth = WIDTH - PADDING.left - PADDING.right;
  const plotHeight = HEIGHT - PADDING.top - PADDING.bottom;
  const slot = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  const busiest = days[values.indexOf(max)];
  const summary =
    max === 0
      ? `No usage from ${days[0] ?? ""} to ${days.at(-1) ?? ""}.`
      : `${metric === "cost" ? "Estimated cost" : "Tokens"} per day from ${days[0] ?? ""} to ${days.at(-1) ?? ""}: ${format(total)} in all, most on ${busiest ?? ""} (${format(max)}).`;

  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary} preserveAspectRatio="none" class="chart-svg">
        <line x1={PADDING.left} x2={WIDTH - PADDING.right} y1={HEIGHT - PADDING.bottom} y2={HEIGHT - PADDING.bottom} class="chart-axis" />
        {days.map((day, index) => {
          const value = values[index] ?? 0;
          const height = max === 0 ? 0 : (value / max) * plotHeight;
          const x = PADDING.left + index * slot + (slot - barWidth) / 2;
          return (
            <rect key={day} x={x} y={HEIGHT - PADDING.bottom - height} width={barWidth} height={Math.max(height, value > 0 ? 1 : 0)} class="chart-bar">
              <title>{`${day}: ${format(value)}`}</title>
            </rect>
          );
        })}
      </svg>
      {/* Outside the SVG, which stretches to the width: text in it would stretch too. */}
      <div class="chart-labels" aria-hidden="true">
        <span>{days[0]}</span>
        <span>{days.at(-1)}</span>
      </div>
      <figcaption>{summary}</figcaption>
      <details>
        <summary>Daily numbers</summary>
        <div class="table-scroll" tabIndex={0} role="region" aria-label="Daily numbers">
          <table>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Requests</th>
                <th scope="col">Tokens</th>
                <th scope="col">Estimated cost</th>
              </tr>
            </thead>
            <tbody>
              {days
                .filter((day) => byDay.has(day))
                .map((day) => {
                  const row = byDay.get(day);
                  return (
                    <tr key={day}>
                      <th scope="row">{day}</th>
                      <td>{formatCount(row?.requests ?? 0)}</td>
                      <td>{formatCount((row?.inputTokens ?? 0) + (row?.outputTokens ?? 0))}</td>
                      <td>{formatUsd(row?.estimatedCostUsd ?? 0)}</td>
                    </tr>
                  );
                })}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
