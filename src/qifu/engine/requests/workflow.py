"""The request's life, as a table of allowed moves (FixMyStreet's states, China's 12345 loop).

    submitted ─sign─▶ signed ─start─▶ in_progress ─answer─▶ answered ─confirm─▶ closed
         │              │                  │   ▲                │ (7 days silent: auto_close)
         │              │            wait_for_enterprise│resume  reopen (within 15 days,
         │              │                  ▼   │                ▼  dissatisfied) ─▶ in_progress
         │              │               waiting                 closed ─reopen─▶ in_progress
         └──transfer──▶ submitted (another department: a reason, counted)

``merge`` closes a duplicate into the request it repeats. An illegal move raises
``IllegalMove`` naming the state and the move, in Chinese. Open311 shows ``open`` for every
state but ``closed``.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a request stands (诉求状态)."""

    SUBMITTED = "submitted"  # 已提交：待承办部门签收
    SIGNED = "signed"  # 已签收
    IN_PROGRESS = "in_progress"  # 办理中
    WAITING = "waiting"  # 待企业补充：时限暂停
    ANSWERED = "answered"  # 已答复：待企业确认或评价
    CLOSED = "closed"  # 已办结


LABELS = {
    State.SUBMITTED: "待签收", State.SIGNED: "已签收", State.IN_PROGRESS: "办理中", State.WAITING: "待企业补充",
    State.ANSWERED: "已答复", State.CLOSED: "已办结",
}


class Move(StrEnum):
    """What someone does to a request."""

    SIGN = "sign"  # 签收
    START = "start"  # 开始办理
    WAIT = "wait_for_enterprise"  # 请企业补充材料（时限暂停）
    RESUME = "resume"  # 企业已补充（时限继续）
    ANSWER = "answer"  # 答复
    CONFIRM = "confirm"  # 企业确认办结
    AUTO_CLOSE = "auto_close"  # 答复后七天无回应，自动办结
    REOPEN = "reopen"  # 企业不满意，十五天内重新办理
    TRANSFER = "transfer"  # 转办到另一部门（须说明理由）
    MERGE = "merge"  # 与重复诉求合并


MOVE_LABELS = {
    Move.SIGN: "签收", Move.START: "开始办理", Move.WAIT: "请企业补充", Move.RESUME: "企业已补充", Move.ANSWER: "答复",
    Move.CONFIRM: "确认办结", Move.AUTO_CLOSE: "自动办结", Move.REOPEN: "重新办理", Move.TRANSFER: "转办",
    Move.MERGE: "合并为重复诉求",
}

MOVES: dict[tuple[State, Move], State] = {
    (State.SUBMITTED, Move.SIGN): State.SIGNED,
    (State.SUBMITTED, Move.TRANSFER): State.SUBMITTED,
    (State.SUBMITTED, Move.MERGE): State.CLOSED,
    (State.SIGNED, Move.START): State.IN_PROGRESS,
    (State.SIGNED, Move.ANSWER): State.ANSWERED,
    (State.SIGNED, Move.TRANSFER): State.SUBMITTED,
    (State.SIGNED, Move.WAIT): State.WAITING,
    (State.SIGNED, Move.MERGE): State.CLOSED,
    (State.IN_PROGRESS, Move.WAIT): State.WAITING,
    (State.IN_PROGRESS, Move.ANSWER): State.ANSWERED,
    (State.IN_PROGRESS, Move.TRANSFER): State.SUBMITTED,
    (State.IN_PROGRESS, Move.MERGE): State.CLOSED,
    (State.WAITING, Move.RESUME): State.IN_PROGRESS,
    (State.WAITING, Move.ANSWER): State.ANSWERED,
    (State.ANSWERED, Move.CONFIRM): State.CLOSED,
    (State.ANSWERED, Move.AUTO_CLOSE): State.CLOSED,
    (State.ANSWERED, Move.REOPEN): State.IN_PROGRESS,
    (State.CLOSED, Move.REOPEN): State.IN_PROGRESS,
}


class IllegalMove(ValueError):
    """A move the request's state does not allow."""


def next_state(state: State | str, move: Move | str) -> State:
    state, move = State(state), Move(move)
    try:
        return MOVES[(state, move)]
    except KeyError:
        allowed = "、".join(MOVE_LABELS[m] for (s, m) in MOVES if s == state) or "无"
        raise IllegalMove(f"诉求{LABELS[state]}，不能“{MOVE_LABELS[move]}”（此时可以：{allowed}）") from None


def allowed(state: State | str) -> list[Move]:
    return [m for (s, m) in MOVES if s == State(state)]


def is_open(state: State | str) -> bool:
    return State(state) != State.CLOSED
