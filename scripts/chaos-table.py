#!/usr/bin/env python3
"""The recovery table of docs/fault-tolerance.md from `bench chaos` runs in a run store.

    scripts/chaos-table.py results/flotilla-bench.sqlite RUN_ID [RUN_ID ...]

Per scenario and episode: median and range over the runs of each recovery metric; per scenario
the checker's totals. Markdown on standard output.
"""
import json, re, sqlite3, statistics, sys

db, runs = sys.argv[1], [int(r) for r in sys.argv[2:]]
con = sqlite3.connect(db)
rows = con.execute(
    f"select run_id, metric, value, labels_json from samples where run_id in ({','.join('?' * len(runs))}) order by run_id, sequence",
    runs).fetchall()
metrics = ["detect_ms", "new_leader_ms", "first_commit_ms", "agent_declared_dead_ms", "reassignment_ms",
           "time_to_full_throughput_ms", "throughput_dip_pct"]
episodes, order, totals = {}, [], {}
for run, metric, value, labels in rows:
    l = json.loads(labels)
    s = l.get("scenario", "")
    if "episode" in l:
        # Fault names carry node, agent and task ids that differ between seeds.
        name = l["fault"]
        for pattern, repl in [(r" \(node \d+\)", ""), (r"\[[\d, ]+\]\|\[[\d, ]+\]", "3|2"), (r"leader \d+ in", "leader in"),
                              (r"agent a\d+", "an agent"), (r"task \d+", "a task"), (r"node \d+", "a node")]:
            name = re.sub(pattern, repl, name)
        key = (s, int(l["episode"]))
        if key not in episodes:
            episodes[key] = {"name": name + (" (timed from the restart)" if l.get("from") == "restart" else "")}
            order.append(key)
        if metric in metrics:
            episodes[key].setdefault(metric, []).append(value)
    elif metric in ("tasks_lost", "duplicate_completions", "anomalies", "acknowledged_submissions", "unknown_submissions", "reads", "operations"):
        totals.setdefault(s, {}).setdefault(metric, 0)
        totals[s][metric] += value

def cell(xs, unit=""):
    if not xs:
        return "–"
    m = statistics.median(xs)
    fmt = (lambda v: f"{v:.0f}")
    if len(xs) == 1:
        return fmt(m) + unit
    return f"{fmt(m)}{unit} ({fmt(min(xs))}–{fmt(max(xs))})"

print("| scenario | fault | detect ms | new leader ms | first commit ms | agent dead / reassigned ms | full throughput ms | dip % |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for key in order:
    s, k = key
    e = episodes[key]
    name = e["name"]
    agent = "–"
    if e.get("agent_declared_dead_ms") or e.get("reassignment_ms"):
        agent = cell(e.get("agent_declared_dead_ms", [])) + " / " + cell(e.get("reassignment_ms", []))
    print(f"| {s} | {k}. {name} | {cell(e.get('detect_ms', []))} | {cell(e.get('new_leader_ms', []))} | "
          f"{cell(e.get('first_commit_ms', []))} | {agent} | {cell(e.get('time_to_full_throughput_ms', []))} | "
          f"{cell(e.get('throughput_dip_pct', []))} |")
print()
print("| scenario | operations | acknowledged | unknown | reads | lost | duplicated | anomalies |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for s, t in totals.items():
    print(f"| {s} | {t['operations']:.0f} | {t['acknowledged_submissions']:.0f} | {t['unknown_submissions']:.0f} | {t['reads']:.0f} | "
          f"{t['tasks_lost']:.0f} | {t['duplicate_completions']:.0f} | {t['anomalies']:.0f} |")
