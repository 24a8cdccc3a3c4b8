"""Failure-record use cases: record one, list a task's or all of the caller's, get one, abandon one."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from download_server.domain.errors import failure_missing
from download_server.domain.listing import FailureQuery
from download_server.domain.models import Failure, FailureStatus, utcnow
from download_server.domain.ports import Scheduler
from download_server.domain.repositories import Transactions, UnitOfWork
from download_server.services.pagination import Listing, paginate
from download_server.services.validation import (
    MAX_ERROR_MESSAGE,
    MAX_ERROR_TYPE,
    check_length,
    check_uuid,
    require_uuid,
)
from mediadl_common.errors import FailedPrecondition, Validator
from mediadl_common.page_tokens import PageTokens, scope_of

log = logging.getLogger(__name__)

MAX_SEGMENT_URL = 4096


@dataclass(frozen=True)
class NewFailure:
    task_id: str
    segment_index: int
    segment_url: str
    error_type: str
    error_message: str
    http_status: int


@dataclass(frozen=True)
class FailureListRequest:
    page_size: int = 0
    page_token: str = ""
    statuses: tuple[FailureStatus, ...] = ()
    task_id: str = ""  # ListFailures: optional filter; ListTaskFailures: required


class FailureService:
    def __init__(self, transactions: Transactions, scheduler: Scheduler, tokens: PageTokens) -> None:
        self._tx = transactions
        self._scheduler = scheduler
        self._tokens = tokens

    async def create_failure(self, user_id: str, new: NewFailure) -> Failure:
        v = Validator()
        task_id = check_uuid(v, new.task_id, "task_id")
        v.check(new.segment_index >= -1, "segment_index", "must be -1 (whole resource) or a segment index >= 0")
        check_length(v, new.segment_url, "segment_url", maximum=MAX_SEGMENT_URL)
        check_length(v, new.error_type, "error_type", minimum=1, maximum=MAX_ERROR_TYPE)
        check_length(v, new.error_message, "error_message", maximum=MAX_ERROR_MESSAGE, multiline=True)
        v.check(
            new.http_status == 0 or 100 <= new.http_status <= 599,
            "http_status",
            "must be 0 (none) or an HTTP status 100-599",
        )
        v.raise_if_any()
        failure = Failure(
            id=str(uuid.uuid4()),
            task_id=task_id,
            segment_index=new.segment_index,
            segment_url=new.segment_url,
            error_type=new.error_type,
            error_message=new.error_message,
            http_status=new.http_status,
        )

        def record(uow: UnitOfWork) -> Failure:
            uow.tasks.get(task_id, user_id)
            return uow.failures.add(failure)

        stored = await self._tx.run(record)
        log.info("failure recorded", extra={"task_id": task_id, "failure_id": stored.id})
        return stored

    async def list_task_failures(self, user_id: str, request: FailureListRequest) -> Listing[Failure]:
        task_id = require_uuid(request.task_id, "task_id")
        return await self._list("ListTaskFailures", user_id, task_id, request)

    async def list_failures(self, user_id: str, request: FailureListRequest) -> Listing[Failure]:
        task_id = require_uuid(request.task_id, "task_id") if request.task_id else None
        return await self._list("ListFailures", user_id, task_id, request)

    async def _list(
        self, method: str, user_id: str, task_id: str | None, request: FailureListRequest
    ) -> Listing[Failure]:
        if task_id is not None:
            # Someone else's task id must answer NOT_FOUND, exactly like an unknown one, not an empty page.
            await self._tx.read_task(task_id, user_id)
        statuses = tuple(sorted(set(request.statuses)))
        query = FailureQuery(user_id=user_id, task_id=task_id, statuses=statuses)
        scope = scope_of(method, user_id, task_id, [s.value for s in statuses])
        return await paginate(
            self._tokens,
            scope,
            request.page_size,
            request.page_token,
            lambda cursor, limit: self._tx.run(lambda uow: uow.failures.page(query, cursor, limit)),
        )

    async def get_failure(self, user_id: str, failure_id: str) -> Failure:
        failure_id = require_uuid(failure_id, "failure_id")
        return await self._tx.run(lambda uow: uow.failures.get(failure_id, user_id))

    async def retry_failure(self, user_id: str, failure_id: str, task_id: str = "") -> Failure:
        """Fetch the one segment (or resource) again now; the record as it stands after that attempt."""
        failure_id, expected_task = _ids(failure_id, task_id)
        failure = await self._tx.run(lambda uow: uow.failures.get(failure_id, user_id))
        _check_open(failure, expected_task, "retried")
        retried = await self._scheduler.retry_failure(failure_id)
        log.info(
            "failure retried: %s", retried.status.value, extra={"task_id": retried.task_id, "failure_id": failure_id}
        )
        return retried

    async def abandon_failure(self, user_id: str, failure_id: str, task_id: str = "") -> Failure:
        failure_id, expected_task = _ids(failure_id, task_id)

        def abandon(uow: UnitOfWork) -> Failure:
            failure = uow.failures.get(failure_id, user_id, lock=True)
            _check_open(failure, expected_task, "abandoned")
            failure.status = FailureStatus.ABANDONED
            failure.update_time = utcnow()
            uow.failures.save(failure)
            return failure

        abandoned = await self._tx.run(abandon)
        log.info("failure abandoned", extra={"task_id": abandoned.task_id, "failure_id": failure_id})
        return abandoned


def _ids(failure_id: str, task_id: str) -> tuple[str, str | None]:
    v = Validator()
    checked = check_uuid(v, failure_id, "failure_id")
    expected_task = check_uuid(v, task_id, "task_id") if task_id else None
    v.raise_if_any()
    return checked, expected_task


def _check_open(failure: Failure, expected_task: str | None, verb: str) -> None:
    # A task_id that does not match is answered like an unknown failure: nothing leaks about either.
    if expected_task is not None and failure.task_id != expected_task:
        raise failure_missing(failure.id)
    if not failure.status.is_open:
        raise FailedPrecondition(
            f"failure {failure.id} is already {failure.status.value}; only an open one can be {verb}",
            reason="FAILURE_CLOSED",
        )
