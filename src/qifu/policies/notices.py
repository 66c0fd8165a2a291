"""The firms a policy finds are told through the outbox and its sender (quiet hours, opt-outs,
exactly once): after a match run that found new firms, one message per firm for every match it
has not been told of yet, however many policies those are, so that a firm eligible for five
subsidies gets one text, not five. A 免申即享 policy asks the firm only to check and confirm its
account; a 需申请 one invites it to apply (政策找人: the firm need not find the policy first); a
firm found by both kinds is told both in the one text. The match records when it was told
(``told_at``), in the same transaction as the message, so that matching again tells nobody
twice. A firm reachable by neither text nor email is not marked told; it still sees the match in
the portal and on its page, and is told the morning after its registry entry gives a number or
an address that reaches it (``tell_reached``), or by the next run that finds something new. A
firm that has neither confirmed nor applied (nor declined) ``FOLLOW_UP_DAYS`` after it was told
is reminded once (``follow_up``, each morning). The department that runs an application policy
is told of each application waiting for it (``to_department``), and the firm of its decision
(``decision``)."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal
from typing import NamedTuple

import polars as pl
from django.db import connection, transaction
from django.utils import timezone

from qifu import bulk
from qifu.engine.policies.match import PER_WAN, micro_text
from qifu.policies.models import Match, Policy
from qifu.reminders import decency
from qifu.reminders.models import OutboxMessage

FREE = "工作人员不会索要费用或验证码。"
DECLINE = "不需要的可在平台上选择放弃，将不再提醒。"


class Texts(NamedTuple):
    """A message's templates: for one match and for several of 免申即享 policies only, of 需申请
    ones only, and of both kinds (``k`` of the ``n`` to apply for); and the note each adds to
    the message's reason, for staff."""

    one: str
    many: str
    apply_one: str
    apply_many: str
    mixed: str
    notes: tuple[str, str, str]  # automatic only, application only, both


TAIL = "无需申请。请登录企服平台核对，并确认收款账户。" + FREE
APPLY = "需提交申请。请登录企服平台“惠企政策”查看条件并申请，" + DECLINE + FREE
TOLD = Texts(
    one="【企服】贵单位符合“{title}”（{code}）享受条件，预计可得 {amount} 万元，" + TAIL,
    many="【企服】贵单位符合“{title}”（{code}）等 {n} 项政策享受条件，预计合计可得 {amount} 万元，" + TAIL,
    apply_one="【企服】贵单位可申请“{title}”（{code}），预计可得 {amount} 万元，" + APPLY,
    apply_many="【企服】贵单位可申请“{title}”（{code}）等 {n} 项政策，预计合计可得 {amount} 万元，" + APPLY,
    mixed=("【企服】贵单位符合“{title}”（{code}）等 {n} 项政策条件，预计合计可得 {amount} 万元，其中 {k} 项需提交申请。"
           "请登录企服平台核对：免申即享的确认收款账户，需申请的提交申请。" + FREE),
    notes=("（免申即享）", "（需申请）", "（免申即享及需申请）"))
# the one reminder, FOLLOW_UP_DAYS after, to a firm that has neither confirmed nor applied
FOLLOW_UP_DAYS = 14
AGAIN = "收款账户尚未确认。无需申请，请登录企服平台核对并确认，确认后即可兑现。" + FREE
APPLY_AGAIN = "尚未提交申请。请登录企服平台“惠企政策”申请，" + DECLINE + FREE
REMINDED = Texts(
    one="【企服】提醒：贵单位符合“{title}”（{code}）享受条件，预计可得 {amount} 万元，" + AGAIN,
    many="【企服】提醒：贵单位符合“{title}”（{code}）等 {n} 项政策享受条件，预计合计可得 {amount} 万元，" + AGAIN,
    apply_one="【企服】提醒：贵单位可申请“{title}”（{code}），预计可得 {amount} 万元，" + APPLY_AGAIN,
    apply_many="【企服】提醒：贵单位可申请“{title}”（{code}）等 {n} 项政策，预计合计可得 {amount} 万元，" + APPLY_AGAIN,
    mixed=("【企服】提醒：贵单位符合“{title}”（{code}）等 {n} 项政策条件，预计合计可得 {amount} 万元，"
           "尚未确认收款账户或提交申请（其中 {k} 项需申请）。请登录企服平台办理，" + DECLINE + FREE),
    notes=("（免申即享，尚未确认收款账户）", "（需申请，尚未申请）", "（尚未确认收款账户或申请）"))


MATCH_SCHEMA = {"id": pl.Int64, "uscc": pl.String, "code": pl.String, "title": pl.String, "micro": pl.Int64,
                "mode": pl.String}


def body(title: str, code: str, amount: Decimal, n: int = 1) -> str:
    """The text for one 免申即享 policy, or for ``title``'s and ``n`` - 1 others, ``amount`` the sum."""
    return (TOLD.one if n == 1 else TOLD.many).format(title=title, code=code, n=n, amount=f"{amount.normalize():f}")


def _text(template: str, columns: dict[str, pl.Expr]) -> pl.Expr:
    """``template`` written for every row, its fields taken from ``columns``."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(template):
        parts.append(pl.lit(literal))
        if field is not None:
            parts.append(columns[field])
    return pl.concat_str(parts)


def reachable(entities: pl.DataFrame) -> pl.DataFrame:
    """The firms among ``entities`` (``uscc``, ``phone``, ``email``) that a text or an email
    reaches (``decency.in_writing``): ``uscc``, ``channel``, ``recipient``."""
    return decency.in_writing(entities.select("uscc", "phone", "email")).select("uscc", "channel", "recipient")


def untold(codes: list[str]) -> pl.DataFrame:
    """The eligible matches of the policies ``codes`` not told yet (``_matches``),
    locked on PostgreSQL until the transaction ends. A match run reads them before it inserts
    its new matches (stored as told where a message reaches the firm), so as not to read those
    back."""
    if not codes:
        return pl.DataFrame(schema=MATCH_SCHEMA)
    marks = ", ".join(["%s"] * len(codes))
    return _matches(f"p.code IN ({marks}) AND m.status = %s AND m.told_at IS NULL", [*codes, Match.Status.ELIGIBLE],
                    lock=True)


def tell(codes: list[str], now: dt.datetime, fresh: pl.DataFrame, reach: pl.DataFrame,
         waiting: pl.DataFrame | None = None) -> int:
    """Messages for the eligible, untold matches of the policies ``codes``: one per firm that
    ``reach`` reaches (``reachable``), naming its largest amount's policy and counting the
    others. ``fresh`` (``uscc``, ``code``, ``title``, ``micro``, ``mode``) are the matches this run
    stored, as told already where their firm is reached; the others (``waiting``, else read
    here: ``untold``) are marked told. Returns how many messages."""
    if not codes:
        return 0
    return store(telling(now, fresh, reach, untold(codes) if waiting is None else waiting), now)


class Telling(NamedTuple):
    """What a match run (``telling``) or a morning's job tells: the outbox's rows, and the matches
    stored before that they tell of, to be marked (``store``)."""

    messages: pl.DataFrame
    waiting: pl.DataFrame


def telling(now: dt.datetime, fresh: pl.DataFrame, reach: pl.DataFrame, waiting: pl.DataFrame) -> Telling:
    """``tell``'s messages, made from frames only: no database, so a match run makes them in a
    thread of its own while it inserts its matches (``store`` writes them)."""
    waiting = waiting.join(reach.select("uscc"), on="uscc", how="semi")
    matches = pl.concat([waiting, fresh.join(reach.select("uscc"), on="uscc", how="semi").select(
        pl.lit(None, dtype=pl.Int64).alias("id"), "uscc", "code", "title", pl.col("micro").cast(pl.Int64), "mode")])
    return Telling(_messages(matches, reach, now, "policy", TOLD), waiting)


def store(told: Telling, now: dt.datetime, column: str = "told_at") -> int:
    """The messages of ``told`` into the outbox, and ``column`` (when told) set on the matches
    it waited for. Returns how many messages."""
    bulk.insert(OutboxMessage._meta.db_table, told.messages, rows_per_statement=bulk.MANY_ROWS)
    _mark(told.waiting, column, now)
    return told.messages.height


def tell_reached(now: dt.datetime | None = None) -> int:
    """Each morning (`qifu worker`): the eligible matches whose firm was not told, as nothing
    reached it when it was matched, and that a text or an e-mail reaches now (an import
    of the registry gave it a mobile number or an address since), told as a match run tells
    them: one message per firm. A match stored by a run told not to notify (``Match.quiet``)
    waits for the next run that notifies. Returns how many messages."""
    return _tell_due("m.status = %s AND m.told_at IS NULL AND NOT m.quiet", [Match.Status.ELIGIBLE],
                     now or timezone.now(), "told_at", "policy-reached", TOLD)


def follow_up(now: dt.datetime | None = None) -> int:
    """Once, ``FOLLOW_UP_DAYS`` after a firm was told of a match it has neither confirmed
    (免申即享) nor applied for (需申请) nor declined yet, a second message: one per firm, of every
    such match (run by `qifu worker` each morning; the match records ``followed_up_at`` in the
    same transaction as the message). A firm no longer reached is left to staff (the policy
    page's 待确认 list). Returns how many messages."""
    now = now or timezone.now()
    return _tell_due("m.status = %s AND m.told_at <= %s AND m.followed_up_at IS NULL",
                     [Match.Status.ELIGIBLE,
                      connection.ops.adapt_datetimefield_value(now - dt.timedelta(days=FOLLOW_UP_DAYS))],
                     now, "followed_up_at", "policy-follow-up", REMINDED)


def _tell_due(where: str, params: list, now: dt.datetime, column: str, prefix: str, texts: Texts) -> int:
    """The matches ``where`` says whose firm a text or an e-mail reaches: one message per firm
    (``_messages``) and ``column`` set on each match, in one transaction, the rows locked on
    PostgreSQL. Returns how many messages."""
    with transaction.atomic():
        due = _matches(where, params, contacts=True)
        if due.is_empty():
            return 0
        reach = reachable(due.select("uscc", "phone", "email").unique("uscc"))
        due = due.join(reach.select("uscc"), on="uscc", how="semi")
        return store(Telling(_messages(due, reach, now, prefix, texts), due), now, column)


def _matches(where: str, params: list, contacts: bool = False, lock: bool = False) -> pl.DataFrame:
    """The matches ``where`` says (over ``m``, the match, and ``p``, its policy): ``id``, ``uscc``,
    ``code``, ``title``, ``micro`` (the amount in millionths of 万元), ``mode``; with
    ``contacts``, the firm's ``phone`` and ``email`` too. With ``contacts`` or ``lock`` the rows are locked on
    PostgreSQL until the transaction ends, so that a match run and the morning's job at once
    cannot both write a message for them: the second waits, and then reads them as told (on
    SQLite, transactions begin IMMEDIATE and so take turns anyway)."""
    schema = dict(MATCH_SCHEMA)
    sql = (f"SELECT m.id, m.uscc, p.code, p.title, CAST(ROUND(m.amount * {PER_WAN}) AS BIGINT), p.mode "
           f"FROM {Match._meta.db_table} m JOIN {Policy._meta.db_table} p ON p.id = m.policy_id WHERE {where}")
    if contacts:
        schema.update(phone=pl.String, email=pl.String)
        sql = sql.replace(" FROM ", ", e.phone, e.email FROM ", 1).replace(
            " WHERE ", " JOIN registry_entity e ON e.uscc = m.uscc WHERE ", 1)
    if (contacts or lock) and connection.vendor == "postgresql":
        sql += " FOR UPDATE OF m"
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return pl.DataFrame(rows, orient="row", schema=schema)


def _mark(matches: pl.DataFrame, column: str, now: dt.datetime) -> None:
    bulk.update(Match._meta.db_table, matches.select("id", pl.lit(now).cast(pl.Datetime("us", "UTC")).alias(column)),
                key=["id"])


def _messages(matches: pl.DataFrame, reach: pl.DataFrame, now: dt.datetime, prefix: str, texts: Texts) -> pl.DataFrame:
    """One outbox message per firm of ``matches`` (all of firms ``reach`` reaches), naming the
    policy of its largest amount and counting the others, in ``texts``' words for what the firm
    is asked to do (confirm, apply, or both), as the outbox's rows in its unique key's order."""
    firms = (matches.sort(["micro", "code"], descending=[True, False]).group_by("uscc", maintain_order=True).agg(
        pl.col("code").first(), pl.col("title").first(), pl.col("code").sort().str.join("、").alias("codes"),
        pl.col("micro").sum(), pl.len().alias("n"),
        (pl.col("mode") == Policy.Mode.APPLICATION.value).sum().alias("k"))).join(reach, on="uscc")
    fields = {"title": pl.col("title"), "code": pl.col("code"), "n": pl.col("n").cast(pl.String),
              "k": pl.col("k").cast(pl.String), "amount": micro_text(trim=True)}
    one, none, every = pl.col("n") == 1, pl.col("k") == 0, pl.col("k") == pl.col("n")
    text = (pl.when(none & one).then(_text(texts.one, fields)).when(none).then(_text(texts.many, fields))
            .when(every & one).then(_text(texts.apply_one, fields)).when(every).then(_text(texts.apply_many, fields))
            .otherwise(_text(texts.mixed, fields)))
    note = pl.when(none).then(pl.lit(texts.notes[0])).when(every).then(pl.lit(texts.notes[1])).otherwise(
        pl.lit(texts.notes[2]))
    utc = pl.Datetime("us", "UTC")
    # the key names the firm, the policy of its largest amount and the run (its second): a
    # match is told of (or followed up) once, so a firm's later message names another match or
    # another run, and no key repeats
    run = int(now.timestamp())
    return firms.select(
        pl.concat_str([pl.lit(prefix + ":"), pl.col("uscc"), pl.lit(":"), pl.col("code"), pl.lit(f":{run}")]).alias("key"),
        pl.col("uscc"), pl.lit("").alias("also_for"), pl.lit("policy").alias("purpose"), pl.col("channel"),
        pl.col("recipient"), text.alias("body"),
        pl.concat_str([pl.lit("符合政策 "), pl.col("codes"), note]).alias("reason"),
        pl.lit("treated").alias("group"), pl.lit(timezone.localdate(now)).alias("planned_for"),
        pl.lit(OutboxMessage.Status.PENDING.value).alias("status"), pl.lit(0).alias("attempts"),
        pl.lit(now).cast(utc).alias("next_attempt_at"), pl.lit("").alias("last_error"),
        pl.lit("").alias("provider_id"), pl.lit(None, dtype=utc).alias("sent_at"),
        pl.lit(timezone.now()).cast(utc).alias("created_at")).sort("key")  # in the unique index's order


def to_department(application, now: dt.datetime) -> OutboxMessage | None:
    """The department that runs an application policy told, once per submission, that an
    application waits for its review (as a request's department is told of a new request): by
    email, else by text, where it has either configured (None: it sees the queue only). The
    message names the policy and the application's number, not the firm; it is filed under the
    firm, as a request's notices to its department are, and counts toward none of the firm's
    limits."""
    m = application.match
    # once per submission: an application handed in again after a withdrawal is told again
    return _to_department(m, f"policy-application:{application.pk}:dep:{int(application.submitted_at.timestamp())}",
                          f"有新的政策申请待审核（“{m.policy.title}”，申请编号 {application.pk}），"
                          f"请登录企服平台“惠企政策—政策申请”办理。", f"政策 {m.policy.code} 新申请待审核", now)


def _to_department(m, key: str, text: str, reason: str, now: dt.datetime) -> OutboxMessage | None:
    """A message about match ``m`` to its policy's department, once under ``key``, by email, else
    by text, where it has either configured (None otherwise)."""
    from qifu.service_requests.models import Department

    policy = m.policy
    dep = Department.objects.filter(name=policy.department, active=True).first() if policy.department else None
    if dep is None or not (dep.email or dep.phone):
        return None
    channel, recipient = dep.reach
    message, _ = OutboxMessage.objects.get_or_create(key=key, defaults=dict(
        entity_id=m.entity_id, addressee=OutboxMessage.Addressee.DEPARTMENT, purpose="policy", channel=channel,
        recipient=recipient, body=f"【企服】{dep.name}：{text}", reason=reason, planned_for=timezone.localdate(now),
        next_attempt_at=now))
    return message


def gave_up(m, now: dt.datetime) -> OutboxMessage | None:
    """The policy's department told, once, that a firm gave up the rest of a policy it had
    accepted (放弃其余资金): no later milestone is to be released for it. Filed under the firm, as
    its other notices to departments are; it names the match's number, not the firm."""
    return _to_department(m, f"policy-gave-up:{m.pk}:dep",
                          f"“{m.policy.title}”有一家企业放弃了其余资金（匹配编号 {m.pk}），已核准未拨付的已取消，"
                          f"后续拨付节点不再核准。详见企服平台“惠企政策”。", f"政策 {m.policy.code} 企业放弃其余资金", now)


def returned(application, now: dt.datetime) -> OutboxMessage | None:
    """The firm told, once per return, that its application was sent back for what is missing
    (退回补正), with the department's words, to hand it in again from the portal."""
    m = application.match
    e, p = m.entity, m.policy
    body = (f"【企服】{e.name}：您申请的“{p.title}”需补正后重新提交：{application.review_reason}。"
            f"请登录企服平台“惠企政策”补充材料后再次提交。{FREE}")
    return decency.tell_once(f"policy-returned:{application.pk}:{int(application.reviewed_at.timestamp())}", e.uscc,
                             "policy", e.phone, e.email, body, f"政策 {p.code} 申请退回补正", now)


def decision(application, now: dt.datetime) -> OutboxMessage | None:
    """The firm told, once, what the department decided on its application, by text or email
    where one reaches it (None: it sees the decision in the portal only): approved, with the
    amount and that it will be paid; or not, with the department's reason and where to turn."""
    m = application.match
    e, p = m.entity, m.policy
    if application.status == application.Status.APPROVED:
        body = (f"【企服】{e.name}：您申请的“{p.title}”已审核通过，金额 {m.amount.normalize():f} 万元，"
                f"将按期直接拨付到贵单位账户，进度可登录企服平台“惠企政策”查看。{FREE}")
    else:
        body = (f"【企服】{e.name}：您申请的“{p.title}”审核未通过：{application.review_reason}。"
                f"如有疑问或需补充材料，可登录企服平台通过“企业诉求”反映。{FREE}")
    return decency.tell_once(f"policy-decision:{application.pk}", e.uscc, "policy", e.phone, e.email, body,
                             f"政策 {p.code} 申请审核{'通过' if application.status == 'approved' else '未通过'}", now)
