"""Every task status change goes through the domain's state machine (Task.apply, domain/lifecycle.py).

Outside download_server/domain nothing may write a TaskStatus into a `status`: not by assignment, not by
`setattr`, not as a `status=` keyword of `replace(...)`, `Task(...)` or an SQL UPDATE's `.values(...)`. Rows
that copy a task the domain already changed (`row.status = task.status.value`) name no TaskStatus and pass,
and so does an event decoded from a relay payload (`TaskEvent(status=TaskStatus(...))`: no task changes).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "download_server"
DOMAIN = ROOT / "domain"


# Calls whose `status=` keyword makes or changes a task (or its row).
_CHANGERS = frozenset({"replace", "Task", "values"})


def _names_task_status(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "TaskStatus" for n in ast.walk(node))


def _pairs(target: ast.expr, value: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of an assignment, element by element for `a.status, b = X, Y`."""
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        return [pair for t, v in zip(target.elts, value.elts, strict=True) for pair in _pairs(t, v)]
    return [(target, value)]


def status_writes(source: str) -> list[int]:
    """Line numbers where `source` writes a TaskStatus into something's `status`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for t, v in _pairs(target, node.value):
                    if isinstance(t, ast.Attribute) and t.attr == "status" and _names_task_status(v):
                        lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in _CHANGERS and any(k.arg == "status" and _names_task_status(k.value) for k in node.keywords):
                lines.append(node.lineno)
            if isinstance(func, ast.Name) and func.id == "setattr" and len(node.args) == 3:
                name = node.args[1]
                if isinstance(name, ast.Constant) and name.value == "status" and _names_task_status(node.args[2]):
                    lines.append(node.lineno)
    return sorted(set(lines))


def _modules_outside_domain() -> list[Path]:
    return [p for p in sorted(ROOT.rglob("*.py")) if DOMAIN not in p.parents and "migrations" not in p.parts]


@pytest.mark.parametrize(
    "snippet",
    [
        "task.status = TaskStatus.PAUSED",
        "task.status, task.update_time = TaskStatus.PROCESSING, now",
        "replace(task, status=TaskStatus.CANCELLED)",
        "update(TaskRow).values(status=TaskStatus.PROCESSING.value)",
        "setattr(task, 'status', TaskStatus.FAILED)",
        "dataclasses.replace(task, status=TaskStatus.PROCESSING)",
        "Task(id=i, status=TaskStatus.COMPLETED)",
        "task.status: TaskStatus = TaskStatus.FAILED",
    ],
)
def test_the_check_sees_every_way_of_writing_a_status(snippet: str) -> None:
    assert status_writes(snippet) == [1]


@pytest.mark.parametrize(
    "snippet",
    [
        "segment.status = SegmentStatus.DONE",
        "failure.status, failure.update_time = FailureStatus.PENDING, now",
        "row.status = task.status.value",
        "if task.status is TaskStatus.PROCESSING: pass",
        "TaskEvent(task_id=t, status=TaskStatus(fields['s']))",
    ],
)
def test_the_check_leaves_other_statuses_and_reads_alone(snippet: str) -> None:
    assert status_writes(snippet) == []


def test_no_module_outside_the_domain_changes_a_task_status() -> None:
    modules = _modules_outside_domain()
    assert len(modules) > 40  # the walk found the server's code
    offenders = {
        str(path.relative_to(ROOT.parent)): found
        for path in modules
        if (found := status_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, f"status changes outside Task.apply (domain/lifecycle.py): {offenders}"
