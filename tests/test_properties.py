"""Properties that must hold for any input: the wire parser, the signer's canonical forms,
the poll schedule and the shared rate limiter (hypothesis)."""

from __future__ import annotations

import json
import random
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdm_status import JobStatus, PollPolicy, RateLimiter, ResponseFormatError, Submission
from cdm_status._models import JobSummary
from cdm_status._schedule import DueQueue
from cdm_status._signer import canonical_query, canonical_uri
from cdm_status._wire import parse_job_list, parse_submissions
from cdm_status.testing import FakeClock
from tests.budget.test_ratelimit import most_in_any_window

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- the parser

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
SUBMISSION_KEYS = [
    "job-name",
    "status",
    "creation-date",
    "last-update-date",
    "creation-user",
    "last-udpate-user",
    "last-update-user",
    "is-execute-auto",
    "isDeleteJob",
    "isIncrementing",
    "isStopingIncrement",
    "external-id",
    "progress",
    "submission-id",
    "counters",
    "error-summary",
    "error-details",
]
STATUSES = st.sampled_from([s.value for s in JobStatus]) | st.text(max_size=10)
field_values = st.one_of(
    json_values,
    STATUSES,
    st.integers(min_value=-(2**64), max_value=2**64),
    st.dictionaries(
        st.just("org.apache.sqoop.submission.counter.SqoopCounters"),
        st.dictionaries(st.sampled_from(["ROWS_READ", "BYTES_WRITTEN", "X"]), json_values),
    ),
)
# Shaped like the documented bodies, so that the checks deep inside are reached too.
submission_like = st.dictionaries(st.sampled_from(SUBMISSION_KEYS), field_values)
status_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"submissions": st.lists(submission_like, max_size=3)}),
    st.fixed_dictionaries({"submissions": json_values}),
)
list_entry = st.dictionaries(
    st.sampled_from(["name", "status", "job_type", "jobType"]), field_values
)
list_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"total": field_values, "jobs": st.lists(list_entry | json_values, max_size=3)}
    ),
)


def encoded(value: Any) -> bytes:
    # json.dumps writes NaN/Infinity and huge integers: the parser must refuse those itself.
    return json.dumps(value).encode()


def parse_status_or_refuse(body: bytes) -> None:
    try:
        result = parse_submissions(body, job_name="j")
    except ResponseFormatError:
        return
    assert isinstance(result, list)
    assert all(isinstance(item, Submission) for item in result)


def parse_list_or_refuse(body: bytes) -> None:
    try:
        total, jobs = parse_job_list(body)
    except ResponseFormatError:
        return
    assert isinstance(total, int)
    assert all(isinstance(job, JobSummary) for job in jobs)


@FAST
@given(status_bodies)
def test_the_status_parser_returns_submissions_or_refuses_any_json(value: Any) -> None:
    parse_status_or_refuse(encoded(value))


@FAST
@given(list_bodies)
def test_the_list_parser_returns_summaries_or_refuses_any_json(value: Any) -> None:
    parse_list_or_refuse(encoded(value))


@FAST
@given(st.binary(max_size=200) | status_bodies.map(encoded).map(lambda b: b[: len(b) // 2]))
def test_both_parsers_refuse_arbitrary_bytes_cleanly(body: bytes) -> None:
    parse_status_or_refuse(body)
    parse_list_or_refuse(body)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_returns_or_refuses(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    body = '{"submissions": [{"status": "RUNNING", "x": ' + opener * depth + "1"
    body += closer * depth + "}]}"
    parse_status_or_refuse(body.encode())


# --------------------------------------------------------------------------- the signer

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
HEX = "0123456789abcdefABCDEF"


def reference_encode(text: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 bytes, unreserved characters kept, upper hex."""
    return "".join(
        chr(byte) if byte in UNRESERVED else f"%{byte:02X}" for byte in text.encode("utf-8")
    )


def reference_decode(text: str) -> str:
    """Every ``%XX`` becomes its byte; the bytes are read as UTF-8, bad ones replaced."""
    out = bytearray()
    index = 0
    while index < len(text):
        if text[index] == "%" and _is_hex(text[index + 1 : index + 3]):
            out.append(int(text[index + 1 : index + 3], 16))
            index += 3
        else:
            out += text[index].encode("utf-8")
            index += 1
    return out.decode("utf-8", errors="replace")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(char in HEX for char in pair)


def reference_uri(path: str) -> str:
    """The SDK's canonical URI: decode, split on ``/``, encode each part, end with ``/``."""
    uri = "/".join(reference_encode(part) for part in reference_decode(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def reference_query(pairs: list[tuple[str, str]]) -> str:
    ordered = sorted(pairs, key=lambda pair: (pair[0], pair[1]))
    return "&".join(f"{reference_encode(k)}={reference_encode(v)}" for k, v in ordered)


names = st.text(min_size=1, max_size=40)
raw_paths = st.lists(
    st.text(max_size=12) | st.from_regex(r"(%[0-9A-Fa-f]{2}|%|[a-z/.~])*", fullmatch=True),
    max_size=5,
).map(lambda parts: "/" + "/".join(parts))


@FAST
@given(names)
def test_canonical_uri_of_a_job_path_matches_the_reference(name: str) -> None:
    wire = f"/v1.1/p/clusters/c/cdm/job/{reference_encode(name)}/status"
    assert canonical_uri(wire) == reference_uri(wire)


@FAST
@given(raw_paths)
def test_canonical_uri_of_any_path_matches_the_reference(path: str) -> None:
    assert canonical_uri(path) == reference_uri(path)


@FAST
@given(st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=6))
def test_canonical_query_matches_the_reference(pairs: list[tuple[str, str]]) -> None:
    assert canonical_query(pairs) == reference_query(pairs)
    assert canonical_query(reversed(pairs)) == canonical_query(pairs)


# --------------------------------------------------------------------------- the schedule

policies = st.builds(
    PollPolicy,
    starting_interval=st.floats(0.5, 60),
    running_interval=st.floats(0.5, 60),
    running_growth=st.floats(0, 1),
    max_interval=st.floats(1, 600),
    waiting_max_interval=st.floats(1, 3600),
    min_interval=st.floats(0.1, 10),
    unknown_interval=st.floats(0.5, 120),
    failure_backoff=st.floats(0.1, 30),
    jitter=st.floats(0, 0.5),
)
ALL_STATUSES = list(JobStatus)
WAITING = {JobStatus.NEVER_EXECUTED, JobStatus.NEW, JobStatus.PENDING}


def cap(policy: PollPolicy, status: JobStatus) -> float:
    """The longest a job in ``status`` may wait for its next poll (jitter included)."""
    if status in WAITING:
        longest = max(policy.waiting_max_interval, policy.starting_interval)
    else:
        longest = policy.max_interval
    return longest * (1 + policy.jitter)


# One observation: a status (or a failed poll: None), and seconds since the last one.
observations = st.lists(
    st.tuples(st.sampled_from([*ALL_STATUSES, None]), st.floats(0, 10_000)), max_size=30
)


@FAST
@given(policies, observations, st.floats(0.01, 1.0), st.randoms(use_true_random=False))
def test_next_polls_are_never_in_the_past_nor_later_than_the_cap(
    policy: PollPolicy,
    seen: list[tuple[JobStatus | None, float]],
    scale: float,
    rng: random.Random,
) -> None:
    now, entered, current, failures = 0.0, 0.0, JobStatus.NEVER_EXECUTED, 0
    for status, elapsed in seen:
        now += elapsed
        if status is None:
            failures += 1
            due = policy.retry_poll(failures, now, rng.random())
            assert now < due <= now + policy.max_interval * (1 + policy.jitter) + 1e-9
            continue
        failures = 0
        if status is not current:
            current, entered = status, now
        due = policy.next_poll(current, now - entered, now, rng.random(), scale)
        assert now < due <= now + cap(policy, current) + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    policies,
    st.integers(min_value=1, max_value=60),
    st.floats(0.05, 10),
    st.lists(st.sampled_from(ALL_STATUSES), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=2**32),
)
def test_under_any_budget_every_job_is_polled_within_its_cap(
    policy: PollPolicy,
    jobs: int,
    per_second: float,
    statuses: list[JobStatus],
    seed: int,
) -> None:
    """A dispatcher that sends ``per_second`` polls a second, always to the job due
    longest: a job waits at most its cap, plus one round of the whole watch when the
    budget cannot keep up with everybody."""
    # A seeded generator, not st.randoms(): this loop draws up to 2,400 numbers, more than
    # hypothesis lets one example consume (its data_too_large health check).
    rng = random.Random(seed)
    queue = DueQueue()
    last_poll: dict[str, float] = {}
    status_of = {f"job{i}": statuses[i % len(statuses)] for i in range(jobs)}
    entered = dict.fromkeys(status_of, 0.0)
    for job in status_of:
        queue.schedule(job, 0.0)
    now = 0.0
    round_time = jobs / per_second
    for _ in range(jobs * 20):
        due = queue.next_due()
        assert due is not None
        now = max(now, due)
        name = queue.pop_due(now)
        assert name is not None
        status = status_of[name]
        if name in last_poll:
            assert now - last_poll[name] <= cap(policy, status) + round_time + 1e-6
        last_poll[name] = now
        if rng.random() < 0.1:  # the job moves on to another state
            status_of[name], entered[name] = rng.choice(ALL_STATUSES), now
        following = policy.next_poll(status_of[name], now - entered[name], now, rng.random())
        assert following > now
        queue.schedule(name, following)
        now += 1.0 / per_second  # the budget: one poll per 1/per_second seconds
    assert set(last_poll) == set(status_of)  # nobody starved


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=20),
    st.lists(st.tuples(st.floats(0, 30), st.booleans(), st.floats(0, 20)), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=6),
)
def test_the_rate_limiter_never_exceeds_its_budget_in_any_window(
    per_minute: int,
    burst: int,
    plan: list[tuple[float, bool, float]],
    callers: int,
) -> None:
    """Concurrent callers with gaps, and pauses (a 429) now and then: never more than
    ``per_minute`` in any minute, and nothing goes out while paused."""
    clock = FakeClock()
    limiter = RateLimiter(per_minute, burst=burst, clock=clock)
    sent: list[float] = []
    pauses: list[tuple[float, float]] = []

    async def caller(offset: int) -> None:
        for gap, pause, seconds in plan[offset:] + plan[:offset]:
            await clock.sleep(gap)
            await limiter.acquire()
            sent.append(clock.monotonic())
            if pause:
                pauses.append((clock.monotonic(), clock.monotonic() + seconds))
                limiter.pause(seconds)

    async def main() -> None:
        async with clock.autojump(), anyio.create_task_group() as group:
            for offset in range(callers):
                group.start_soon(caller, offset % len(plan))

    anyio.run(main)
    assert len(sent) == callers * len(plan) == limiter.acquired
    assert most_in_any_window(sent, 60.0) <= per_minute
    for started, until in pauses:
        assert not [t for t in sent if started < t < until - 1e-9]
