"""Python client for mediadl: async first (:func:`connect`), with a blocking facade (:func:`connect_sync`).

>>> from clients import connect, ResourceType, TaskStatus
>>> client = await connect("127.0.0.1:50051", "127.0.0.1:50052")
>>> await client.login("ada@example.com", "correct horse")

No protobuf crosses this API: results are the frozen dataclasses of :mod:`clients.models`, errors the
tree of :mod:`clients.errors`.
"""

from __future__ import annotations

from clients._transport import RetryPolicy
from clients._video_files_api import VideoChunk
from clients.aio import AsyncClient, connect
from clients.errors import (
    AlreadyExistsError,
    AuthenticationError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    MediadlError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
    UnimplementedError,
)
from clients.models import (
    Failure,
    FailureStatus,
    OutputFormat,
    Page,
    ResourceType,
    Task,
    TaskEvent,
    TaskStatus,
    User,
    Video,
)
from clients.streams import TaskEventStream
from clients.sync import Client
from clients.sync import connect as connect_sync
from clients.tokens import FileTokenStore, MemoryTokenStore, Tokens, TokenStore, TokenStoreError

__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "Failure",
    "FailureStatus",
    "FieldViolation",
    "FileTokenStore",
    "InternalError",
    "InvalidArgumentError",
    "MediadlError",
    "MemoryTokenStore",
    "NotFoundError",
    "OutputFormat",
    "Page",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ResourceType",
    "RetryPolicy",
    "Task",
    "TaskEvent",
    "TaskEventStream",
    "TaskStatus",
    "TokenStore",
    "TokenStoreError",
    "Tokens",
    "UnavailableError",
    "UnimplementedError",
    "User",
    "Video",
    "VideoChunk",
    "connect",
    "connect_sync",
]
