#!/usr/bin/env python3
"""Turns one `just bench` run's raw results into a table on standard output and
docs/benchmarks.md.

Usage: report.py RESULTS_DIRECTORY OUTPUT_MARKDOWN
"""

import glob
import os
import re
import statistics
import sys

TARGET_RATIO = 0.7
TARGET_PAGE_RATIO = 0.6
TARGET_P99_MS = 5.0
TARGET_RSS_MIB = 32.0
TARGET_ROWS_PER_S = 500_000
TARGET_INSTRUCTIONS = 70_000
# Instructions per GET /organizations/{id}/ (bench/callgrind.sh) at commit f422f8f, before
# the credential and the organization were read in one statement.
BEFORE_INSTRUCTIONS = 172_643
# The audit log and webhooks (bench/events.sh): the event write costs at most 10 % of a
# PUT's throughput; a page of /events/ among 1,000,000 events answers within 20 ms (p99).
TARGET_EVENT_PUT_RATIO = 0.9
TARGET_EVENTS_P99_MS = 20.0


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def key_values(text: str) -> dict:
    values = {}
    for token in re.findall(r"(\w+)=(\S*)", text):
        values[token[0]] = token[1]
    return values


def percentile(sorted_values: list, share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def wrk_result(results: str, name: str) -> dict:
    text = read(os.path.join(results, f"{name}.wrk"))
    lines = [line for line in text.splitlines() if line.startswith("bench:")]
    values = key_values(" ".join(lines))
    requests = int(values["requests"])
    seconds = int(values["duration_us"]) / 1e6
    errors = sum(int(values[k]) for k in ("non2xx", "connect", "read", "write", "timeout"))
    return {
        "rps": requests / seconds,
        "p50_ms": int(values["p50_us"]) / 1000,
        "p99_ms": int(values["p99_us"]) / 1000,
        "requests": requests,
        "errors": errors,
        "rss_mib": int(read(os.path.join(results, f"{name}.rss")).strip()) / 1024,
        "cpu_us": int(read(os.path.join(results, f"{name}.cpu_us")).strip()) / max(requests, 1),
        "busy": int(read(os.path.join(results, f"{name}.busy")).strip()),
    }


def pgbench_result(results: str, name: str):
    path = os.path.join(results, f"{name}.pgbench")
    if not os.path.exists(path):
        return None
    summary = read(path)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", summary)
    failed = re.search(r"number of failed transactions: (\d+)", summary)
    latencies = []
    for log in glob.glob(os.path.join(results, f"{name}.pgbench.d", "pgbench_log.*")):
        with open(log, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 3:
                    latencies.append(int(fields[2]))
    latencies.sort()
    return {
        "tps": float(match.group(1)) if match else float("nan"),
        "p50_ms": percentile(latencies, 0.50) / 1000,
        "p99_ms": percentile(latencies, 0.99) / 1000,
        "failed": int(failed.group(1)) if failed else 0,
        "busy": int(read(os.path.join(results, f"{name}.pgbench.busy")).strip()),
    }


def read_phases(results: str) -> list:
    """The measured phases, in order: (name, label, rate)."""
    return [line.split("\t") for line in read(os.path.join(results, "phases")).splitlines()]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def events_report(results: str, measured: dict):
    """The audit-log and webhook section and its target lines (bench/events.sh)."""
    with_event = measured["events_put"][0]
    without = measured["events_put_same"][0]
    ratio = with_event["rps"] / without["rps"]
    targets = []
    # The target: the PUT with its event against the PUT of the build before the audit
    # log, in the same run (bench/events.sh, measure_baseline_put).
    befores = sorted(
        measured[name][0]["rps"] for name in measured if name.startswith("events_put_before_")
    )
    if befores:
        # Medians of the turns the two builds took (bench/events.sh).
        currents = sorted(
            [with_event["rps"]]
            + [measured[name][0]["rps"] for name in measured if name.startswith("events_put_again_")]
        )
        before = statistics.median(befores)
        current = statistics.median(currents)
        label = next(
            (label for name, label, _ in read_phases(results) if name.startswith("events_put_before_")),
            "",
        )
        revision = re.search(r"build (\S+)", label)
        before_ratio = current / before

        def turns(values: list) -> str:
            return " / ".join(f"{value:,.0f}" for value in values)

        targets.append(
            f"| PUT with its event within {1 - TARGET_EVENT_PUT_RATIO:.0%} of the PUT before "
            f"the audit log (build `{revision.group(1) if revision else '?'}`, same run; "
            f"medians of {len(currents)} and {len(befores)} turns taken in alternation: "
            f"{turns(currents)} against {turns(befores)}) | "
            f"{current:,.0f} / {before:,.0f} = {before_ratio:.2f} | "
            f"{verdict(before_ratio >= TARGET_EVENT_PUT_RATIO)} |"
        )
    # The event's own price, on this build: the same PUT when it changes nothing (no
    # event). Not the target's measure, which compares with the PUT before the audit log.
    targets.append(
        f"| the event's price on this build: PUT with its event / the same PUT recording "
        f"none | {with_event['rps']:,.0f} / {without['rps']:,.0f} = {ratio:.2f} | — |"
    )
    # The latency target is read at half of peak, as GET one organization's: unpaced, the
    # p99 is the queue of 16 connections on the machine's CPUs.
    for name, what in (
        ("events_cursor1_half", "first cursor page at half of peak"),
        ("events_cursor_deep_half", "cursor page among the oldest 100,000 at half of peak"),
    ):
        if name in measured:
            p99 = measured[name][0]["p99_ms"]
            targets.append(
                f"| /events/ {what}, 1,000,000 events, p99 < {TARGET_EVENTS_P99_MS:.0f} ms "
                f"| {p99:.2f} ms | {verdict(p99 < TARGET_EVENTS_P99_MS)} |"
            )
    if "events_page1" in measured:
        p99 = measured["events_page1"][0]["p99_ms"]
        targets.append(
            "| /events/ numbered page 1 with its `count`, 1,000,000 events (not the "
            "target's measure: the count reads every entry; deep readers use the cursor, "
            f"`docs/audit.md`) | {p99:.2f} ms unpaced | — |"
        )
    lines = []
    hooks_path = os.path.join(results, "webhooks")
    if os.path.exists(hooks_path):
        hooks = key_values(read(hooks_path))
        if "deliveries_per_s" in hooks:
            lines = [
                "| webhooks | measured |",
                "|---|---:|",
                f"| deliveries per second ({int(hooks['burst_deliveries']):,} queued at once, "
                f"receiver answering 204) | {int(hooks['deliveries_per_s']):,} |",
                f"| change-to-delivery delay p50 / p99 / max ms "
                f"({int(hooks['paced_deliveries']):,} changes, paced) | "
                f"{float(hooks['delay_p50_ms']):.1f} / {float(hooks['delay_p99_ms']):.1f} / "
                f"{float(hooks['delay_max_ms']):.1f} |",
                f"| failed deliveries | {int(hooks['failed'])} |",
                f"| seeding 1,000,000 events (SQL) s | {hooks.get('events_seed_seconds', '—')} |",
            ]
    section = (
        "## Audit log and webhooks\n\n"
        "`bench/events.sh`. *PUT … changing the name* writes an `organization.updated` event "
        "with every request; *PUT … with the stored values* runs the same update and records "
        "no event (a write that changes nothing records nothing, `docs/audit.md`), so the two "
        "lines differ by the event's insert and its webhook matching, on one build. The "
        "*build 440deb2* lines run the same changing PUT on the last commit without the audit "
        "log (its own database, seeded by its own `bench/seed.sql`), in turns with the "
        "current build's *turn* lines; the target compares the medians of the turns. The "
        "`/events/` lines read child 2 once it holds 1,000,000 events (`bench/seed_events.sql`): "
        "numbered page 1 pays a `count(*)` of all of them, cursor pages do not; numbered page "
        "10,000 shows what `offset` costs. Unpaced, 16 connections queue on the machine's CPUs, "
        "so the p99 that says what one page costs is the paced line's. Webhook deliveries go to `bench/receiver.py` on the "
        "same machine; the delay is its arrival time minus the event's `created_at`, and "
        "includes the worker's idle poll (500 ms) when nothing was due.\n\n"
        + ("\n".join(lines) + "\n" if lines else "")
    )
    if lines:
        print()
        print("\n".join(lines))
    return section, targets


def main() -> None:
    results, output = sys.argv[1], sys.argv[2]
    machine = dict(
        line.split("=", 1) for line in read(os.path.join(results, "machine")).splitlines()
    )
    phases = read_phases(results)
    export = key_values(read(os.path.join(results, "export")))
    explain = read(os.path.join(results, "explain.txt")).rstrip()

    rows = []
    measured = {}
    for name, label, rate in phases:
        service = wrk_result(results, name)
        ceiling = pgbench_result(results, name)
        measured[name] = (service, ceiling, int(rate))
        rows.append((label, service, ceiling, int(rate)))

    # --- the table ------------------------------------------------------------------
    header = (
        "| request | service req/s | p50 ms | p99 ms | errors | raw SQL req/s | raw SQL p50 / p99 ms "
        "| service / raw SQL | service CPU µs/req | machine CPU busy % | peak RSS MiB |"
    )
    table = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, service, ceiling, rate in rows:
        shown = label + (f" (paced at {rate}/s)" if rate else "")
        if ceiling:
            raw = f"{ceiling['tps']:,.0f}"
            raw_latency = f"{ceiling['p50_ms']:.2f} / {ceiling['p99_ms']:.2f}"
            ratio = f"{service['rps'] / ceiling['tps']:.2f}"
            busy = f"{service['busy']} / {ceiling['busy']}"
        else:
            raw = raw_latency = ratio = "—"
            busy = f"{service['busy']}"
        table.append(
            f"| {shown} | {service['rps']:,.0f} | {service['p50_ms']:.2f} | "
            f"{service['p99_ms']:.2f} | {service['errors']} | {raw} | {raw_latency} | {ratio} "
            f"| {service['cpu_us']:.0f} | {busy} | {service['rss_mib']:.1f} |"
        )

    rows_exported = int(export["rows"])
    export_seconds = float(export["seconds"])
    rows_per_s = rows_exported / export_seconds
    ceiling_seconds = float(export["ceiling_seconds"])
    rss_before = int(export["rss_before_kib"]) / 1024
    rss_export = int(export["rss_peak_kib"]) / 1024
    csv_mib = int(export["bytes"]) / 1024 / 1024
    growth = rss_export - rss_before
    export_table = [
        "| export | rows | seconds | rows/s | CSV MiB | raw SQL (psql) seconds | RSS before MiB "
        "| peak RSS during MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| `GET /organizations/2/opt_outs/` as `text/csv` | {rows_exported:,} | "
        f"{export_seconds:.2f} | {rows_per_s:,.0f} | {csv_mib:.1f} | {ceiling_seconds:.2f} | "
        f"{rss_before:.1f} | {rss_export:.1f} |",
    ]

    # --- targets --------------------------------------------------------------------
    get_service, get_ceiling, _ = measured["org_get"]
    half_service, _, half_rate = measured["org_get_half"]
    ratio = get_service["rps"] / get_ceiling["tps"]
    load_rss = max(service["rss_mib"] for service, _, _ in measured.values())
    flat = growth < max(4.0, csv_mib / 4)
    targets = [
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| GET one organization ≥ {TARGET_RATIO:.0%} of the raw-SQL ceiling | "
        f"{get_service['rps']:,.0f} / {get_ceiling['tps']:,.0f} = {ratio:.2f} | "
        f"{verdict(ratio >= TARGET_RATIO)} |",
        f"| p99 < {TARGET_P99_MS:.0f} ms at half of peak throughput | p99 "
        f"{half_service['p99_ms']:.2f} ms at {half_service['rps']:,.0f} req/s "
        f"(asked {half_rate:,}) | {verdict(half_service['p99_ms'] < TARGET_P99_MS)} |",
        f"| peak RSS < {TARGET_RSS_MIB:.0f} MiB under load | {load_rss:.1f} MiB | "
        f"{verdict(load_rss < TARGET_RSS_MIB)} |",
        f"| CSV export ≥ {TARGET_ROWS_PER_S:,} rows/s | {rows_per_s:,.0f} rows/s | "
        f"{verdict(rows_per_s >= TARGET_ROWS_PER_S)} |",
        f"| CSV export in flat memory | {rss_before:.1f} → {rss_export:.1f} MiB "
        f"(+{growth:.1f}) for {csv_mib:.1f} MiB of CSV | {verdict(flat)} |",
    ]

    for name, label in (("org_list", "list"), ("org_children", "children")):
        service, ceiling, _ = measured[name]
        if ceiling:
            page_ratio = service["rps"] / ceiling["tps"]
            targets.append(
                f"| {label} page 1 ≥ {TARGET_PAGE_RATIO:.0%} of its raw-SQL ceiling | "
                f"{service['rps']:,.0f} / {ceiling['tps']:,.0f} = {page_ratio:.2f} | "
                f"{verdict(page_ratio >= TARGET_PAGE_RATIO)} |"
            )
    callgrind_path = os.path.join(results, "callgrind")
    if os.path.exists(callgrind_path):
        counted = key_values(read(callgrind_path).split("#", 1)[0])
        per_request = int(counted["instructions_per_request"])
        targets.append(
            f"| instructions per GET one organization ≤ {TARGET_INSTRUCTIONS:,} "
            f"(callgrind, `bench/callgrind.sh`) | before {BEFORE_INSTRUCTIONS:,}, "
            f"now {per_request:,} | {verdict(per_request <= TARGET_INSTRUCTIONS)} |"
        )

    events_section = ""
    if "events_put" in measured and "events_put_same" in measured:
        events_section, event_targets = events_report(results, measured)
        targets.extend(event_targets)

    errors = sum(service["errors"] for service, _, _ in measured.values())
    failed = sum(c["failed"] for _, c, _ in measured.values() if c)

    memory_gib = int(machine["memory_kib"]) / 1024 / 1024
    machine_line = (
        f"{machine['date']}, commit `{machine['commit']}`, {machine['nproc']} CPUs "
        f"({machine['cpu']}), {memory_gib:.1f} GiB, Linux {machine['kernel']}, "
        f"PostgreSQL {machine['postgres']} on the same machine; {machine['duration']} s per "
        f"measurement, {machine['connections']} connections, {machine['threads']} load threads; "
        f"seeding took {machine['seed_seconds']} s."
    )

    print()
    print(machine_line)
    print()
    print("\n".join(table))
    print()
    print("\n".join(export_table))
    print()
    print("\n".join(targets))
    if errors or failed:
        print(f"\nwarning: {errors} failed requests and {failed} failed raw-SQL transactions")

    processes = ""
    processes_path = os.path.join(results, "processes")
    if os.path.exists(processes_path):
        rows = {}
        for line in read(processes_path).splitlines():
            mode, count, rps, errors = line.split()
            rows.setdefault(int(count), {})[mode] = (int(float(rps)), int(errors))
        pooler = read(os.path.join(results, "processes.pooler")).strip()
        lines = [
            "| processes | direct req/s | through PgBouncer req/s | errors |",
            "|---:|---:|---:|---:|",
        ]
        for count in sorted(rows):
            direct = rows[count].get("direct", (0, 0))
            pooled = rows[count].get("pgbouncer", (0, 0))
            lines.append(
                f"| {count} | {direct[0]:,} | {pooled[0]:,} | {direct[1] + pooled[1]} |"
            )
        processes = (
            "## Processes\n\n"
            "`GET /organizations/{id}/` with 1, 2 and 4 `orgs serve` processes, the same "
            "total connections split evenly over them (one `wrk` per process, requests per "
            "second added up): straight to PostgreSQL, and through PgBouncer in transaction "
            f"mode with `ORGS_DATABASE_POOLER=transaction` ({pooler}). On one machine the "
            "processes share its CPUs with PostgreSQL and the load generators: the table shows "
            "what the pooler and the sessionless statements cost, not how far more machines "
            "would go (`docs/scaling.md`).\n\n" + "\n".join(lines) + "\n"
        )
        print()
        print("\n".join(lines))

    notes_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    notes = read(notes_path).rstrip() if os.path.exists(notes_path) else ""

    document = f"""# Benchmarks

Generated by `just bench` (`bench/run.sh`); do not edit by hand, edit `bench/notes.md`
for the discussion and run it again. How to run it: README.md, "Benchmarks".

## Last run

{machine_line}

Each line is one route measured with `wrk` for the whole duration at fixed concurrency,
against 1 root organization with 1,000 children, 10,000 users and 1,000,000 opt-outs
(`bench/seed.sql`). Ids in `{{id}}` are drawn at random among the children (the opt-out
pages skip child 2, whose 200,000 opt-outs are kept for the export). *Raw SQL* runs the
same statements that one request runs, authentication included, through `pgbench -M
prepared` with as many clients for as long on the same database in the same run
(`bench/pgbench/`): the ceiling a service on this database cannot pass. Latencies are
wrk's and pgbench's, from sending a request to its last byte. Peak RSS is the service's
(VmRSS polled every 20 ms and VmHWM reset at each phase's start). Errors counts non-2xx
answers and socket errors (there should be none). *Service CPU* is the user and system
time of the `orgs` process divided by the requests it served; *machine CPU busy* is the
share of all CPUs in use during the measurement (service run / raw-SQL run): at 100 the
machine, not the code path, sets the throughput.

{chr(10).join(table)}

{chr(10).join(export_table)}

{processes}
{events_section}
## Targets

{chr(10).join(targets)}

{notes}

## Plans

`EXPLAIN (ANALYZE, BUFFERS)` of the statements above, prepared and executed six times
first, as `sqlx` runs them (so the plan is the one the connection keeps), after the load:

```
{explain}
```
"""
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(document)


if __name__ == "__main__":
    main()
