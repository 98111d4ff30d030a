"""Scenario matrix: the waiter next to the polite and the naive loop, on the migrations
that real ones vary by.

Each cell is one whole-database migration on the CDM simulator with CDM's limits on (120
status and 120 list requests a minute, over any 60 s window), virtual time, every request a
seeded 20-120 ms round trip, every run seeded: 5% of the tables fail part way, boot takes
2-20 s, run times are lognormal around a median of 900 s. Three clients watch it in turn,
in the same process, each on a fresh simulator with the same seed (the same migration):

* ``waiter``: cdm-status with its defaults (``async with JobStatusWaiter(client)``,
  ``random=Random(SEED)``);
* ``polite``: each job polled in turn, one request every 61/120 s; a job that ended leaves
  the round (each job is seen every N/rate seconds at most);
* ``naive``: ``asyncio.gather`` of one 10 s loop per job, no budget (429s count as failed
  looks), over a window of 60,000 requests' worth (600 s at 1,000 jobs).

The two loops read neither the job list, nor progress, nor dates: on cells whose tables
start and end at the same moments (the same N, order, spread and tables at a time) they
send the same requests and see the same answers, so they are measured once per such
timeline and their rows say on which cell (``measured_on``).

The axes: N (1,000; 10,000), listed in the job list or not, start order (in order,
shuffled, longest first), run-time spread sigma (0.3, 1, 2), tables at a time (10, 50,
500), progress shape (linear, convex, stalling, jumpy, zero, absent), server clock offset
(0, -15 min, +3 years). The full product is 1,944 cells; on 2 cores a cell takes minutes,
so the matrix is a base cell (1,000 tables, listed, in order, sigma 1, 50 at a time,
linear, offset 0), each axis varied alone from it, and the combinations the issue's goals
name (see ``DESIGN``). 10,000 tables run 500 at a time (at 50 they would take 3.5 days).

Each cell is watched until its migration ends, or for 12 hours (2 hours with ``--quick``,
which also divides N and the tables at a time by 10). Reported per cell and client: p50 /
p95 / max lag between a table's end and the client seeing it, ends seen and missed (ended
in the window, not seen), lost (seen to end otherwise than it did), requests of each kind,
429s, and the floors of the cell: the polite bound N/rate and the waiting bound
max(300 s, W/rate), W the tables waiting for a slot at the start. Two runs of a cell give
the same figures (``--check`` runs them in two processes with different hash seeds).

    .venv/bin/python benchmarks/matrix.py [--cell NAME[,NAME...]] [--quick]
        [--clients waiter,polite,naive] [--jobs 2] [--check] [--list] [--json PATH]

The whole matrix writes ``benchmarks/results/matrix.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from _lag import (  # type: ignore[import-not-found]
    NetworkDelay,
    Sightings,
    baseline,
    naive_gather,
    polite_loop,
    score,
)
from _report import RESULTS, save  # type: ignore[import-not-found]

from cdm_status import JobStatusWaiter, StatusChanged
from cdm_status.testing import (
    CDMSimulator,
    FakeClock,
    LogNormal,
    ProgressShape,
    RateLimits,
    StartOrder,
)

HOUR = 3600.0
YEAR = 365 * 24 * HOUR
SEED = 2021
RATE = 2.0
"""Status requests a second the budget allows (120 a minute)."""
MEDIAN = 900.0
BOOT = (2.0, 20.0)
FAILURE_RATE = 0.05
CAP = 12 * HOUR
QUICK_CAP = 2 * HOUR
NAIVE_REQUESTS = 60_000
NAIVE_INTERVAL = 10.0


@dataclass(frozen=True)
class Cell:
    """One migration of the matrix; the name says how it differs from the base cell."""

    n: int = 1000
    listed: bool = True
    order: StartOrder = "in_order"
    sigma: float = 1.0
    parallelism: int = 50
    progress: ProgressShape = "linear"
    offset: float = 0.0

    @property
    def name(self) -> str:
        parts = []
        if self.n != 1000:
            parts.append(f"n{self.n}")
        if not self.listed:
            parts.append("unlisted")
        if self.order != "in_order":
            parts.append(self.order.replace("_", "-"))
        if self.sigma != 1.0:
            parts.append(f"sigma{self.sigma:g}")
        if self.parallelism != _parallelism(self.n):
            parts.append(f"p{self.parallelism}")
        if self.progress != "linear":
            parts.append(self.progress)
        if self.offset:
            parts.append(_offset_name(self.offset))
        return "-".join(parts) or "base"

    def quick(self) -> Cell:
        return replace(self, n=self.n // 10, parallelism=max(2, self.parallelism // 10))

    @property
    def polite_bound(self) -> float:
        """Each job seen at least every N/rate seconds by the polite loop."""
        return self.n / RATE

    @property
    def waiting_bound(self) -> float:
        """Each waiting job seen at least every max(300 s, W/rate)."""
        return max(300.0, (self.n - self.parallelism) / RATE)


def _parallelism(n: int) -> int:
    return 50 if n <= 1000 else n // 20


def _offset_name(offset: float) -> str:
    if abs(offset) >= YEAR:
        return f"offset{offset / YEAR:+g}y"
    return f"offset{offset / 60:+g}m"


def _cell(**changes: Any) -> Cell:
    if "n" in changes and "parallelism" not in changes:
        changes["parallelism"] = _parallelism(changes["n"])
    return Cell(**changes)


BASE = Cell()
DESIGN: list[tuple[Cell, str]] = [
    (BASE, "base: 1,000 tables, listed, in order, sigma 1, 50 at a time, linear, offset 0"),
    # Each axis alone.
    (_cell(n=10_000), "axis N (500 at a time)"),
    (_cell(listed=False), "axis listed; goal: unlisted in order p95 <= 60 s"),
    (_cell(order="shuffled"), "axis start order"),
    (_cell(order="longest_first"), "axis start order"),
    (_cell(sigma=0.3), "axis spread; goal: listed p95 <= 3 s"),
    (_cell(sigma=2.0), "axis spread; goal: listed p95 <= 3 s"),
    (_cell(parallelism=10), "axis tables at a time"),
    (_cell(parallelism=500), "axis tables at a time"),
    (_cell(progress="convex"), "axis progress; goal: listed p95 <= 3 s"),
    (_cell(progress="stalling"), "axis progress; goal: no worse than one sweep"),
    (_cell(progress="jumpy"), "axis progress; goal: no worse than one sweep"),
    (_cell(progress="zero"), "axis progress; goal: no worse than one sweep"),
    (_cell(progress="absent"), "axis progress; goal: no worse than one sweep"),
    (_cell(offset=-15 * 60.0), "axis server clock"),
    (_cell(offset=3 * YEAR), "axis server clock"),
    # Not listed, in order, at 1,000: every progress shape (goal: p95 <= 60 s each).
    *(
        (_cell(listed=False, progress=shape), "goal: unlisted in order p95 <= 60 s")
        for shape in ("convex", "stalling", "jumpy", "zero", "absent")
    ),
    # Not listed, shuffled: at or under its budget-bound floor.
    (_cell(listed=False, order="shuffled"), "goal: unlisted shuffled at its floor"),
    # Not listed on a skewed server: the estimate reads dates through the offset.
    (_cell(listed=False, offset=3 * YEAR), "unlisted on a server 3 years ahead"),
    # Listed, in order, predictive progress, every spread, both sizes (goal: p95 <= 3 s
    # at 1,000 and <= 25 s at 10,000); those already above are not repeated (below).
    *(
        (_cell(n=n, sigma=sigma, progress=shape), f"goal: listed p95 <= {goal}")
        for n, goal in ((1000, "3 s"), (10_000, "25 s"))
        for shape in ("linear", "convex")
        for sigma in (0.3, 1.0, 2.0)
    ),
]
CELLS: dict[str, tuple[Cell, str]] = {}
for _cell_why in DESIGN:
    CELLS.setdefault(_cell_why[0].name, _cell_why)  # the first reason a cell is in it
DESIGN = list(CELLS.values())


def build(cell: Cell) -> tuple[CDMSimulator, list[str]]:
    simulator = CDMSimulator(
        clock=FakeClock(),
        seed=SEED,
        limits=RateLimits.cdm_defaults(),
        progress=cell.progress,
        clock_offset=cell.offset,
    )
    jobs = simulator.add_database_job(
        "erp",
        cell.n,
        parallelism=cell.parallelism,
        failure_rate=FAILURE_RATE,
        run_seconds=LogNormal(MEDIAN, cell.sigma),
        boot_seconds=BOOT,
        listed=cell.listed,
        start_order=cell.order,
    )
    return simulator, jobs


def migration_seconds(cell: Cell) -> float:
    """From the start to the last table's end (ground truth)."""
    simulator, jobs = build(cell)
    start = simulator.clock.time()
    return max((simulator.finished_at(job) or start) for job in jobs) - start


Watch = Callable[[CDMSimulator, httpx.AsyncClient, list[str], float], Awaitable[Sightings]]


async def watch_waiter(
    simulator: CDMSimulator, http: httpx.AsyncClient, jobs: list[str], window: float
) -> Sightings:
    sightings = Sightings()
    async with simulator.client(http_client=http) as client:
        waiter = JobStatusWaiter(client, clock=simulator.clock, random=random.Random(SEED))
        async with waiter, waiter.watch(jobs, timeout=window) as events:
            async for event in events:
                if isinstance(event, StatusChanged):
                    sightings.record(event.job_name, event.current.value, event.at.timestamp())
    return sightings


CLIENTS: dict[str, Watch] = {
    "waiter": watch_waiter,
    "polite": baseline(polite_loop),
    "naive": baseline(naive_gather),
}


async def run_client(client: str, cell: Cell, horizon: float) -> dict[str, Any]:
    simulator, jobs = build(cell)
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    window = horizon
    if client == "naive":  # N/10 requests a second: a window of NAIVE_REQUESTS
        window = min(horizon, NAIVE_REQUESTS * NAIVE_INTERVAL / cell.n)
    began = time.perf_counter()
    start = clock.time()
    transport = NetworkDelay(simulator.transport(), clock, seed=SEED)
    http = httpx.AsyncClient(transport=transport, base_url=simulator.endpoint)
    async with clock.autojump():
        sightings = await CLIENTS[client](simulator, http, jobs, window)
    await http.aclose()
    result = score(simulator, jobs, sightings, start + window).row()
    served = simulator.stats.by_endpoint_status
    return {
        "cell": cell.name,
        "client": client,
        "window_s": window,
        "end_p50": result["end_p50"],
        "end_p95": result["end_p95"],
        "end_max": result["end_max"],
        "ends_seen": result["ends_seen"],
        "ends_missed": result["ends_missed"],
        "lost": result["lost"],
        "status_requests": served["status", 200],
        "list_requests": served["list", 200],
        "throttled_429": served["status", 429] + served["list", 429],
        "wall_seconds": round(time.perf_counter() - began, 1),
    }


LOOPS = ("polite", "naive")
"""Clients that read neither the job list, nor progress, nor dates: on two cells with the
same migration timeline they send the same requests and see the same answers."""


def timeline(cell: Cell) -> tuple[int, str, float, int]:
    """What decides when each table starts and ends (progress shape, listing and the
    server's clock do not)."""
    return (cell.n, cell.order, cell.sigma, cell.parallelism)


def run_cells(cells: list[Cell], clients: list[str], quick: bool) -> list[dict[str, Any]]:
    """Every client on each of ``cells`` (``quick``: their reduced size), in this process,
    the loops once for cells of one timeline (their rows say which cell they ran on)."""
    rows = []
    loop_rows: dict[tuple[tuple[int, str, float, int], str], dict[str, Any]] = {}
    for cell in cells:
        measured = cell.quick() if quick else cell
        horizon = min(migration_seconds(measured) + 300.0, QUICK_CAP if quick else CAP)
        for client in clients:
            key = (timeline(measured), client)
            if client in LOOPS and key in loop_rows:
                row = dict(loop_rows[key])
            else:
                row = asyncio.run(run_client(client, measured, horizon))
                row["measured_on"] = cell.name
                if client in LOOPS:
                    loop_rows[key] = dict(row)
            row.update(
                cell=cell.name,
                n=measured.n,
                listed=measured.listed,
                order=measured.order,
                sigma=measured.sigma,
                parallelism=measured.parallelism,
                progress=measured.progress,
                offset_s=measured.offset,
                polite_bound_s=measured.polite_bound,
                waiting_bound_s=measured.waiting_bound,
            )
            print(
                f"  {cell.name:<28} {client:<7} p95 {row['end_p95']:8.1f} s  max "
                f"{row['end_max']:8.1f} s  ({row['wall_seconds']:.0f} s wall"
                f"{'' if row['measured_on'] == cell.name else ', on ' + row['measured_on']})",
                flush=True,
            )
            rows.append(row)
    return rows


FIGURES = ("wall_seconds", "measured_on")
"""Row fields that may differ between two runs of a cell (the machine, not the cell; which
cell of its timeline a loop's row was measured on)."""


def figures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in FIGURES} for row in rows]


def check(names: list[str], clients: list[str], quick: bool) -> bool:
    """Run each cell in two processes with different hash seeds: the same figures?"""
    same = True
    for name in names:
        runs = []
        for hash_seed in ("1", "2"):
            out = RESULTS / f".check-{name}-{hash_seed}.json"
            command = [
                sys.executable,
                __file__,
                "--cell",
                name,
                "--clients",
                ",".join(clients),
                "--json",
                str(out),
                *(["--quick"] if quick else []),
            ]
            env = {**os.environ, "PYTHONHASHSEED": hash_seed}
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            runs.append(figures(json.loads(out.read_text())["rows"]))
            out.unlink()
        verdict = "identical" if runs[0] == runs[1] else "DIFFERENT"
        same = same and runs[0] == runs[1]
        print(f"  {name}: two processes (PYTHONHASHSEED 1 and 2): {verdict} figures", flush=True)
    return same


def _seconds(value: float) -> str:
    return "-" if value != value else f"{value:,.1f} s"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| cell | client | window | end lag p50 | p95 | max | ends seen / missed | lost "
        "| status req | list req | 429s | polite bound | waiting bound |"
    )
    lines = [head, "|" + "---|" * 13]
    for row in rows:
        lines.append(
            f"| {row['cell']} | {row['client']} | {row['window_s'] / HOUR:.2f} h "
            f"| {_seconds(row['end_p50'])} | {_seconds(row['end_p95'])} "
            f"| {_seconds(row['end_max'])} | {row['ends_seen']:,} / {row['ends_missed']:,} "
            f"| {row['lost']} | {row['status_requests']:,} | {row['list_requests']:,} "
            f"| {row['throttled_429']:,} | {row['polite_bound_s']:,.0f} s "
            f"| {row['waiting_bound_s']:,.0f} s |"
        )
    return "\n".join(lines)


def design_table() -> str:
    lines = [
        "| cell | N | listed | order | sigma | at a time | progress | offset | why |",
        "|" + "---|" * 9,
    ]
    for cell, why in DESIGN:
        offset = _offset_name(cell.offset)[6:] if cell.offset else "0"
        lines.append(
            f"| {cell.name} | {cell.n:,} | {'yes' if cell.listed else 'no'} "
            f"| {cell.order.replace('_', ' ')} | {cell.sigma:g} | {cell.parallelism} "
            f"| {cell.progress} | {offset} | {why} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cell", action="append", default=[], help="cell names, ,-separated")
    parser.add_argument("--quick", action="store_true", help="N and tables at a time / 10")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--jobs", type=int, default=1, help="cells measured at once")
    parser.add_argument("--check", action="store_true", help="two processes give the same?")
    parser.add_argument("--list", action="store_true", help="print the design and stop")
    parser.add_argument("--json", type=Path, help="write the rows there")
    args = parser.parse_args()
    if args.list:
        print(design_table())
        return
    names = [name for value in args.cell for name in value.split(",") if name] or list(CELLS)
    clients = args.clients.split(",")
    for name in names:
        if name not in CELLS:
            parser.error(f"no cell {name!r}; --list shows them")
    for client in clients:
        if client not in CLIENTS:
            parser.error(f"no client {client!r}: one of {', '.join(CLIENTS)}")
    if args.check:
        sys.exit(0 if check(names, clients, args.quick) else 1)
    began = time.perf_counter()
    cells = [CELLS[name][0] for name in names]
    groups: dict[tuple[int, str, float, int], list[Cell]] = {}
    for cell in cells:  # cells of one timeline in one process: the loops run once for them
        groups.setdefault(timeline(cell), []).append(cell)
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        parts = list(groups.values())
        results = pool.map(run_cells, parts, [clients] * len(parts), [args.quick] * len(parts))
        by_cell = {row["cell"] + "/" + row["client"]: row for part in results for row in part}
    rows = [by_cell[f"{cell.name}/{client}"] for cell in cells for client in clients]
    wall = time.perf_counter() - began
    print()
    print(table(rows))
    print(f"\n{len(cells)} cells in {wall / 60:.1f} min of wall time")
    extra = {"quick": args.quick, "seed": SEED, "wall_seconds": round(wall, 1)}
    extra["design"] = [{**asdict(cell), "name": cell.name, "why": why} for cell, why in DESIGN]
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, **extra}, indent=2) + "\n")
    elif len(names) == len(CELLS) and not args.quick:
        save("matrix", rows, **extra)


if __name__ == "__main__":
    main()
