import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOURCE_TYPE_UNSPECIFIED: _ClassVar[ResourceType]
    RESOURCE_TYPE_HLS: _ClassVar[ResourceType]
    RESOURCE_TYPE_MP4: _ClassVar[ResourceType]
    RESOURCE_TYPE_IMAGE: _ClassVar[ResourceType]
    RESOURCE_TYPE_FLV: _ClassVar[ResourceType]
    RESOURCE_TYPE_DASH: _ClassVar[ResourceType]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_PENDING: _ClassVar[TaskStatus]
    TASK_STATUS_PROCESSING: _ClassVar[TaskStatus]
    TASK_STATUS_PAUSED: _ClassVar[TaskStatus]
    TASK_STATUS_COMPLETED: _ClassVar[TaskStatus]
    TASK_STATUS_PARTIAL_COMPLETED: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]

class FailureStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_STATUS_UNSPECIFIED: _ClassVar[FailureStatus]
    FAILURE_STATUS_PENDING: _ClassVar[FailureStatus]
    FAILURE_STATUS_RETRYING: _ClassVar[FailureStatus]
    FAILURE_STATUS_RESOLVED: _ClassVar[FailureStatus]
    FAILURE_STATUS_ABANDONED: _ClassVar[FailureStatus]

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_HLS: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_MP4: _ClassVar[OutputFormat]

class VideoFileKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIDEO_FILE_KIND_UNSPECIFIED: _ClassVar[VideoFileKind]
    VIDEO_FILE_KIND_MEDIA: _ClassVar[VideoFileKind]
    VIDEO_FILE_KIND_THUMBNAIL: _ClassVar[VideoFileKind]
RESOURCE_TYPE_UNSPECIFIED: ResourceType
RESOURCE_TYPE_HLS: ResourceType
RESOURCE_TYPE_MP4: ResourceType
RESOURCE_TYPE_IMAGE: ResourceType
RESOURCE_TYPE_FLV: ResourceType
RESOURCE_TYPE_DASH: ResourceType
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_PENDING: TaskStatus
TASK_STATUS_PROCESSING: TaskStatus
TASK_STATUS_PAUSED: TaskStatus
TASK_STATUS_COMPLETED: TaskStatus
TASK_STATUS_PARTIAL_COMPLETED: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
FAILURE_STATUS_UNSPECIFIED: FailureStatus
FAILURE_STATUS_PENDING: FailureStatus
FAILURE_STATUS_RETRYING: FailureStatus
FAILURE_STATUS_RESOLVED: FailureStatus
FAILURE_STATUS_ABANDONED: FailureStatus
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
OUTPUT_FORMAT_HLS: OutputFormat
OUTPUT_FORMAT_MP4: OutputFormat
VIDEO_FILE_KIND_UNSPECIFIED: VideoFileKind
VIDEO_FILE_KIND_MEDIA: VideoFileKind
VIDEO_FILE_KIND_THUMBNAIL: VideoFileKind

class Task(_message.Message):
    __slots__ = ("id", "user_id", "video_id", "liveroom_id", "liveroom_title", "liveroom_url", "resource_url", "resource_type", "status", "progress", "bytes_downloaded", "bytes_total", "segments_total", "segments_done", "segments_failed", "retry_count", "last_error", "create_time", "update_time", "complete_time", "output_format", "max_duration_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_ID_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_TITLE_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_URL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BYTES_DOWNLOADED_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    video_id: str
    liveroom_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    resource_type: ResourceType
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_total: int
    segments_done: int
    segments_failed: int
    retry_count: int
    last_error: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    output_format: OutputFormat
    max_duration_seconds: int
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., video_id: _Optional[str] = ..., liveroom_id: _Optional[str] = ..., liveroom_title: _Optional[str] = ..., liveroom_url: _Optional[str] = ..., resource_url: _Optional[str] = ..., resource_type: _Optional[_Union[ResourceType, str]] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., progress: _Optional[float] = ..., bytes_downloaded: _Optional[int] = ..., bytes_total: _Optional[int] = ..., segments_total: _Optional[int] = ..., segments_done: _Optional[int] = ..., segments_failed: _Optional[int] = ..., retry_count: _Optional[int] = ..., last_error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output_format: _Optional[_Union[OutputFormat, str]] = ..., max_duration_seconds: _Optional[int] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "status", "progress", "bytes_downloaded", "bytes_total", "segments_done", "segments_failed", "segments_total", "speed_bytes_per_second", "eta_seconds", "message", "event_time")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BYTES_DOWNLOADED_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SPEED_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: TaskStatus
    progress: float
    bytes_downloaded: int
    bytes_total: int
    segments_done: int
    segments_failed: int
    segments_total: int
    speed_bytes_per_second: float
    eta_seconds: float
    message: str
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., progress: _Optional[float] = ..., bytes_downloaded: _Optional[int] = ..., bytes_total: _Optional[int] = ..., segments_done: _Optional[int] = ..., segments_failed: _Optional[int] = ..., segments_total: _Optional[int] = ..., speed_bytes_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., message: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("id", "task_id", "segment_index", "segment_url", "error_type", "error_message", "http_status", "attempts", "status", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_URL_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    segment_index: int
    segment_url: str
    error_type: str
    error_message: str
    http_status: int
    attempts: int
    status: FailureStatus
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., segment_index: _Optional[int] = ..., segment_url: _Optional[str] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., http_status: _Optional[int] = ..., attempts: _Optional[int] = ..., status: _Optional[_Union[FailureStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("id", "task_id", "video_id", "file_path", "file_size", "duration_seconds", "format", "segment_count", "sha256", "create_time", "thumbnail_path")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_PATH_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_PATH_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    video_id: str
    file_path: str
    file_size: int
    duration_seconds: float
    format: str
    segment_count: int
    sha256: str
    create_time: _timestamp_pb2.Timestamp
    thumbnail_path: str
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., video_id: _Optional[str] = ..., file_path: _Optional[str] = ..., file_size: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., format: _Optional[str] = ..., segment_count: _Optional[int] = ..., sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., thumbnail_path: _Optional[str] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("video_id", "liveroom_id", "liveroom_title", "liveroom_url", "resource_url", "resource_type", "output_format", "max_duration_seconds")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_ID_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_TITLE_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_URL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    liveroom_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    resource_type: ResourceType
    output_format: OutputFormat
    max_duration_seconds: int
    def __init__(self, video_id: _Optional[str] = ..., liveroom_id: _Optional[str] = ..., liveroom_title: _Optional[str] = ..., liveroom_url: _Optional[str] = ..., resource_url: _Optional[str] = ..., resource_type: _Optional[_Union[ResourceType, str]] = ..., output_format: _Optional[_Union[OutputFormat, str]] = ..., max_duration_seconds: _Optional[int] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[TaskStatus]
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[TaskStatus, str]]] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token", "total_size")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    total_size: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("task_id", "liveroom_title", "liveroom_url", "resource_url", "update_mask")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_TITLE_FIELD_NUMBER: _ClassVar[int]
    LIVEROOM_URL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_URL_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    liveroom_title: str
    liveroom_url: str
    resource_url: str
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, task_id: _Optional[str] = ..., liveroom_title: _Optional[str] = ..., liveroom_url: _Optional[str] = ..., resource_url: _Optional[str] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "delete_files")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_FILES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    delete_files: bool
    def __init__(self, task_id: _Optional[str] = ..., delete_files: _Optional[bool] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class StartTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class PauseTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class PauseTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ResumeTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ResumeTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class RetryTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class RetryTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class WatchTaskResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class WatchTasksRequest(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[TaskStatus]
    def __init__(self, statuses: _Optional[_Iterable[_Union[TaskStatus, str]]] = ...) -> None: ...

class WatchTasksResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: TaskEvent
    def __init__(self, event: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class CreateFailureRequest(_message.Message):
    __slots__ = ("task_id", "segment_index", "segment_url", "error_type", "error_message", "http_status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_URL_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    segment_index: int
    segment_url: str
    error_type: str
    error_message: str
    http_status: int
    def __init__(self, task_id: _Optional[str] = ..., segment_index: _Optional[int] = ..., segment_url: _Optional[str] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...

class CreateFailureResponse(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class ListTaskFailuresRequest(_message.Message):
    __slots__ = ("task_id", "page_size", "page_token", "statuses")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[FailureStatus]
    def __init__(self, task_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[FailureStatus, str]]] = ...) -> None: ...

class ListTaskFailuresResponse(_message.Message):
    __slots__ = ("failures", "next_page_token", "total_size")
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    next_page_token: str
    total_size: int
    def __init__(self, failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListFailuresRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "statuses", "task_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[FailureStatus]
    task_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[FailureStatus, str]]] = ..., task_id: _Optional[str] = ...) -> None: ...

class ListFailuresResponse(_message.Message):
    __slots__ = ("failures", "next_page_token", "total_size")
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    next_page_token: str
    total_size: int
    def __init__(self, failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetFailureRequest(_message.Message):
    __slots__ = ("failure_id",)
    FAILURE_ID_FIELD_NUMBER: _ClassVar[int]
    failure_id: str
    def __init__(self, failure_id: _Optional[str] = ...) -> None: ...

class GetFailureResponse(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class RetryFailureRequest(_message.Message):
    __slots__ = ("failure_id", "task_id")
    FAILURE_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    failure_id: str
    task_id: str
    def __init__(self, failure_id: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class RetryFailureResponse(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class AbandonFailureRequest(_message.Message):
    __slots__ = ("failure_id", "task_id")
    FAILURE_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    failure_id: str
    task_id: str
    def __init__(self, failure_id: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class AbandonFailureResponse(_message.Message):
    __slots__ = ("failure",)
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    failure: Failure
    def __init__(self, failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class CreateVideoRequest(_message.Message):
    __slots__ = ("task_id", "file_path", "file_size", "duration_seconds", "format")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_PATH_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    file_path: str
    file_size: int
    duration_seconds: float
    format: str
    def __init__(self, task_id: _Optional[str] = ..., file_path: _Optional[str] = ..., file_size: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., format: _Optional[str] = ...) -> None: ...

class CreateVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: Video
    def __init__(self, video: _Optional[_Union[Video, _Mapping]] = ...) -> None: ...

class ListTaskVideosRequest(_message.Message):
    __slots__ = ("task_id", "page_size", "page_token")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    page_size: int
    page_token: str
    def __init__(self, task_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTaskVideosResponse(_message.Message):
    __slots__ = ("videos", "next_page_token", "total_size")
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    videos: _containers.RepeatedCompositeFieldContainer[Video]
    next_page_token: str
    total_size: int
    def __init__(self, videos: _Optional[_Iterable[_Union[Video, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetVideoRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class GetVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: Video
    def __init__(self, video: _Optional[_Union[Video, _Mapping]] = ...) -> None: ...

class ReadVideoRequest(_message.Message):
    __slots__ = ("video_id", "offset", "kind", "path")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    offset: int
    kind: VideoFileKind
    path: str
    def __init__(self, video_id: _Optional[str] = ..., offset: _Optional[int] = ..., kind: _Optional[_Union[VideoFileKind, str]] = ..., path: _Optional[str] = ...) -> None: ...

class ReadVideoResponse(_message.Message):
    __slots__ = ("data", "offset", "total_size", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    total_size: int
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., total_size: _Optional[int] = ..., content_type: _Optional[str] = ...) -> None: ...
