"""What a superuser may change about another user (UpdateUser), and the rules those changes obey."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from auth_server.domain.users import User, check_full_name
from mediadl_common.errors import FailedPrecondition, Validator

ADMIN_FIELDS = ("full_name", "is_active", "is_superuser")
SELF_LOCKED = ("is_active", "is_superuser")


@dataclass(frozen=True)
class UserChanges:
    """UpdateUser's values; `paths` is the field mask (empty: every field set, i.e. non-empty or true)."""

    user_id: str
    full_name: str = ""
    is_active: bool = False
    is_superuser: bool = False
    paths: Sequence[str] = ()

    def selected(self) -> dict[str, str | bool]:
        """The fields to write, validated; raises InvalidArgument naming each bad field or mask path."""
        values: dict[str, str | bool] = {
            "full_name": self.full_name,
            "is_active": self.is_active,
            "is_superuser": self.is_superuser,
        }
        check = Validator()
        unknown = [p for p in self.paths if p not in ADMIN_FIELDS]
        check.check(
            not unknown,
            "update_mask",
            f"unknown path(s) {', '.join(map(repr, unknown))}: allowed are {', '.join(ADMIN_FIELDS)}",
        )
        chosen = [p for p in ADMIN_FIELDS if p in self.paths] if self.paths else [k for k, v in values.items() if v]
        if "full_name" in chosen:
            check_full_name(check, self.full_name)
        check.raise_if_any()
        return {name: values[name] for name in chosen}

    def apply(self, caller: User, user: User, now: datetime) -> User:
        """`user` changed as asked; FailedPrecondition when a superuser would deactivate or demote themselves."""
        selected = self.selected()
        if caller.id == user.id and any(name in selected for name in SELF_LOCKED):
            raise FailedPrecondition(
                "a superuser cannot deactivate or demote themselves: ask another superuser", reason="SELF_UPDATE"
            )
        if all(getattr(user, name) == value for name, value in selected.items()):
            return user
        deactivated = user.is_active and selected.get("is_active") is False
        return replace(
            user,
            full_name=str(selected.get("full_name", user.full_name)),
            is_active=bool(selected.get("is_active", user.is_active)),
            is_superuser=bool(selected.get("is_superuser", user.is_superuser)),
            update_time=now,
            # Deactivation revokes every access token issued until now (see ListRevocations).
            tokens_revoked_at=now if deactivated else user.tokens_revoked_at,
        )
