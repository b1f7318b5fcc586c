import type { ApiKey, UsageReport } from "keyport/client";
import { useId, useState } from "preact/hooks";
import { client } from "../client.js";
import { formatCount, formatUsd, PROVIDER_NAMES } from "../ui/format.js";
import { ErrorNotice, Loading } from "../ui/status.js";
import { useLoad } from "../ui/use-load.js";
import { type ChartMetric, DailyChart } from "./daily-chart.js";
import { PERIODS, type PeriodId, periodRange } from "./period.js";

type Row = UsageReport["series"][number];

/** The platform key's rows in the by-key report. */
const PLATFORM_GROUP = "platform";

/** Usage over a chosen period: a daily chart, tables by model and by key, own keys against the platform's, and CSV. */
export function UsagePanel() {
  const [period, setPeriod] = useState<PeriodId>("month");
  const [metric, setMetric] = useState<ChartMetric>("cost");
  const periodId = useId();
  const range = periodRange(period);
  const [report, reload] = useLoad(async () => {
    const query = { from: range.from };
    const [byDay, byModel, byKey, listing] = await Promise.all([
      client.usage.get({ ...query, groupBy: "day" }),
      client.usage.get({ ...query, groupBy: "model" }),
      client.usage.get({ ...query, groupBy: "key" }),
      client.apiKeys.list(),
    ]);
    return { byDay, byModel, byKey, keys: listing.keys };
  }, [period]);

  return (
    <div class="panel-body" aria-busy={report.loading}>
      <div class="toolbar">
        <div class="field">
          <label for={periodId}>Period</label>
          <select id={periodId} value={period} onChange={(event) => setPeriod(event.currentTarget.value as PeriodId)}>
            {PERIODS.map((option) => (
              <option key={option.id} value={option.id}>
                {option.label}
              </option>
            ))}
          </select>
        </div>
        <fieldset class="segmented">
          <legend>Chart shows</legend>
          {(["cost", "tokens"] as const).map((value) => (
            <label key={value}>
              <input type="radio" name="chart-metric" value={value} checked={metric === value} onChange={() => setMetric(value)} />
              {value === "cost" ? "Estimated cost" : "Tokens"}
            </label>
          ))}
        </fieldset>
        <a class="button-secondary" href={client.usage.csvUrl({ from: range.from, groupBy: "day" })} download="keyport-usage.csv">
          Download CSV
        </a>
      </div>
      {report.error === undefined ? null : <ErrorNotice error={report.error} what="Usage could not be loaded" onRetry={() => void reload()} />}
      {report.data === undefined ? (
        report.error === undefined ? (
          <Loading>Loading usage…</Loading>
        ) : null
      ) : (
        <>
          <Totals byKey={report.data.byKey} />
          <section class="card" aria-labelledby="daily-heading">
            <h2 id="daily-heading">{metric === "cost" ? "Estimated cost per day" : "Tokens per day"}</h2>
            <DailyChart days={range.days} series={report.data.byDay.series} metric={metric} />
          </section>
          <UsageTable
            id="by-model"
            title="By model"
            firstColumn="Model"
            rows={report.data.byModel.series}
            nameOf={(row) => (row.group === "" ? "(unknown model)" : row.group)}
          />
          <UsageTable id="by-key" title="By key" firstColumn="Key" rows={report.data.byKey.series} nameOf={(row) => keyName(row.group, report.data?.keys ?? [])} />
          {report.data.byDay.totals.unpricedRequests > 0 ? (
            <p class="note">
              {formatCount(report.data.byDay.totals.unpricedRequests)} requests used models without a known price: their cost is not included.
            </p>
          ) : null}
        </>
      )}
    </div>
  );
}

function keyName(group: string, keys: readonly ApiKey[]): string {
  if (group === PLATFORM_GROUP) return "The platform's key";
  const key = keys.find((candidate) => candidate.id === group);
  return key === undefined ? "A deleted key" : `${key.label} (${PROVIDER_NAMES[key.provider]}, ${key.keyHint})`;
}

/** Your own keys against the platform's, over the period. */
function Totals({ byKey }: { byKey: UsageReport }) {
  const platform = byKey.series.filter((row) => row.group === PLATFORM_GROUP);
  const own = byKey.series.filter((row) => row.group !== PLATFORM_GROUP);
  const sum = (rows: readonly Row[]) => ({
    requests: rows.reduce((total, row) => total + row.requests, 0),
    tokens: rows.reduce((total, row) => total + row.inputTokens + row.outputTokens, 0),
    cost: rows.reduce((total, row) => total + row.estimatedCostUsd, 0),
  });
  const parts = [
    { id: "total", title: "All calls", value: sum(byKey.series) },
    { id: "byok", title: "Your own keys", value: sum(own) },
    { id: "platform", title: "The platform's key", value: sum(platform) },
  ];
  return (
    <section class="totals" aria-label="Totals for the period">
      {parts.map((part) => (
        <div key={part.id} class="card total">
          <h2>{part.title}</h2>
          <p class="total-cost">{formatUsd(part.value.cost)}</p>
          <p>
            {formatCount(part.value.requests)} requests · {formatCount(part.value.tokens)} tokens
          </p>
        </div>
      ))}
    </section>
  );
}

function UsageTable(props: { id: string; title: string; firstColumn: string; rows: readonly Row[]; nameOf: (row: Row) => string }) {
  const rows = [...props.rows].sort((a, b) => b.estimatedCostUsd - a.estimatedCostUsd || b.requests - a.requests);
  return (
    <section class="card" aria-labelledby={`${props.id}-heading`}>
      <h2 id={`${props.id}-heading`}>{props.title}</h2>
      {rows.length === 0 ? (
        <p class="empty">No calls in this period.</p>
      ) : (
        <div class="table-scroll" tabIndex={0} role="region" aria-labelledby={`${props.id}-heading`}>
          <table>
            <thead>
              <tr>
                <th scope="col">{props.firstColumn}</th>
                <th scope="col">Requests</th>
                <th scope="col">Tokens (in / out)</th>
                <th scope="col">Estimated cost</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.group}>
                  <th scope="row">{props.nameOf(row)}</th>
                  <td>{formatCount(row.requests)}</td>
                  <td>
                    {formatCount(row.inputTokens)} / {formatCount(row.outputTokens)}
                  </td>
                  <td>{formatUsd(row.estimatedCostUsd)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
