"""The one retry loop (delivery.retry / retry_async) shared by the client, forwarding and the
sandbox's notifier: attempts, waits and what each attempt reports."""

from __future__ import annotations

import asyncio

from paymobctl.delivery import Result, RetryPolicy, retry, retry_async

POLICY = RetryPolicy(attempts=4, first_delay=0.5, factor=2.0, max_delay=1.5)


def test_retry_stops_at_the_first_final_result_and_waits_the_policy_between() -> None:
    slept: list[float] = []
    seen: list[tuple[str, int, bool]] = []
    outcomes = iter(["busy", "busy", "ok", "never"])
    got = retry(
        lambda n: next(outcomes),
        POLICY,
        lambda r, n, last: seen.append((r, n, last)),
        final=lambda r, n: r == "ok",
        sleep=slept.append,
    )
    assert got == "ok"
    assert seen == [("busy", 1, False), ("busy", 2, False), ("ok", 3, True)]
    assert slept == [0.5, 1.0]


def test_retry_gives_up_after_the_policys_attempts() -> None:
    slept: list[float] = []
    seen: list[tuple[int, bool]] = []
    got = retry(
        lambda n: n,
        POLICY,
        lambda r, n, last: seen.append((n, last)),
        final=lambda r, n: False,
        sleep=slept.append,
    )
    assert got == 4 and seen[-1] == (4, True) and [last for _, last in seen].count(True) == 1
    assert slept == [0.5, 1.0, 1.5]  # capped at max_delay
    assert retry(lambda n: n, RetryPolicy(attempts=1), final=lambda r, n: False) == 1


def test_retry_async_records_every_attempt_with_the_delivery_policy() -> None:
    slept: list[float] = []
    recorded: list[Result] = []
    policy = RetryPolicy(attempts=3, first_delay=0.25, factor=2.0, retry_on=frozenset({"non-2xx"}))
    answers = iter([Result("u", status=500), Result("u", status=404), Result("u", status=204)])

    async def attempt(number: int) -> Result:
        return next(answers)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    got = asyncio.run(
        retry_async(
            attempt,
            policy,
            lambda r, n, last: recorded.append(r),
            final=policy.is_final,
            sleep=sleep,
        )
    )
    assert got.status == 204 and [r.status for r in recorded] == [500, 404, 204]
    assert slept == [0.25, 0.5]
