"""A phase's life, as a table of allowed moves (分期验收; domain reference §D.3–D.4).

    planned ─ready─▶ ready ─notify─▶ notified ─accept─▶ accepted ─use─▶ in_use
                                        │  ▲
                                 rectify│  │notify (again, after the defects are fixed)
                                        ▼  │
                                     rectifying

- ``ready``: every document of the phase's checklist is in (the contractor's completion report,
  the supervisor's assessment, the survey and design checks, the test reports).
- ``notify``: the quality station is told of the joint inspection at least three working days
  ahead (a date is given).
- ``accept``: the checklist is complete and every inspection passed.
- ``rectify``: an inspection failed; each of its problems (整改问题, one per line of its result)
  is fixed and shown fixed with a photo, and only then is the station told again.
- ``use``: the accepted phase is put to use (投入使用).

The project is filed once (一次备案), only when every phase is accepted, within fifteen days of
the last acceptance. An illegal move raises ``IllegalMove`` naming the state and the move.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PLANNED = "planned"
    READY = "ready"
    NOTIFIED = "notified"
    RECTIFYING = "rectifying"
    ACCEPTED = "accepted"
    IN_USE = "in_use"


LABELS = {State.PLANNED: "计划中", State.READY: "具备验收条件", State.NOTIFIED: "已告知质监站",
          State.RECTIFYING: "整改中", State.ACCEPTED: "已验收", State.IN_USE: "已投入使用"}


class Move(StrEnum):
    READY = "ready"
    NOTIFY = "notify"
    ACCEPT = "accept"
    RECTIFY = "rectify"
    USE = "use"


MOVE_LABELS = {Move.READY: "申请验收（资料齐全）", Move.NOTIFY: "告知质监站", Move.ACCEPT: "验收通过",
               Move.RECTIFY: "验收未通过，整改", Move.USE: "投入使用"}

MOVES: dict[tuple[State, Move], State] = {
    (State.PLANNED, Move.READY): State.READY,
    (State.READY, Move.NOTIFY): State.NOTIFIED,
    (State.NOTIFIED, Move.ACCEPT): State.ACCEPTED,
    (State.NOTIFIED, Move.RECTIFY): State.RECTIFYING,
    (State.RECTIFYING, Move.NOTIFY): State.NOTIFIED,
    (State.ACCEPTED, Move.USE): State.IN_USE,
}

DONE = (State.ACCEPTED, State.IN_USE)  # a phase counted as accepted for the filing
NOTICE_WORKDAYS = 3  # the quality station is told this many working days before the inspection
FILING_DAYS = 15  # the filing follows the last acceptance within this many days


class IllegalMove(ValueError):
    pass


def next_state(state: str, move: str) -> State:
    try:
        return MOVES[(State(state), Move(move))]
    except (KeyError, ValueError):
        allowed = "、".join(MOVE_LABELS[m] for (s, m) in MOVES if s == state) or "无"
        label = MOVE_LABELS.get(move, move) if move in Move._value2member_map_ else move
        raise IllegalMove(f"当前状态“{LABELS.get(state, state)}”不能“{label}”（可做：{allowed}）") from None


def allowed(state: str) -> list[Move]:
    return [m for (s, m) in MOVES if s == state]


def project_status(phases: list[str], filed: bool) -> str:
    """The project's status from its phases' states."""
    if filed:
        return "filed"
    done = sum(s in DONE for s in phases)
    if phases and done == len(phases):
        return "accepted"
    return "partial" if done else "building"


PROJECT_LABELS = {"building": "在建", "partial": "部分验收", "accepted": "全部验收", "filed": "已备案"}
