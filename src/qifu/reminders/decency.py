"""The rules of decency every message to an enterprise follows, filing reminders and
correction notices alike (docs/reminders.md), written once:

- spacing: no contact within ``QIFU_MIN_DAYS_BETWEEN`` days (default 7) of the last one;
- the season's cap: at most ``QIFU_MAX_PER_SEASON`` contacts (default 4) from 1 January;
- opt-outs: no text or email to a number or address that replied 退订;
- a channel that can reach them: a mobile number gets a text; else an email address an email;
  else any number a call; else a visit by the township.

A contact is one in the history (sent, or a call or visit task) or a filing reminder or
correction notice still waiting in the outbox, never both (the sender writes the history when
it sends). Other messages filed under an entity (a request's notices, those to its department
or to an expert, policy and lab notices) are neither in the history nor counted here.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from django.utils import timezone

from qifu import config
from qifu.engine.contract import PURPOSES
from qifu.reminders.models import OptOut, OutboxMessage

MOBILE = r"^(\+?86-?)?1[3-9][0-9]{9}$"
WAITING = (OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING, OutboxMessage.Status.UNKNOWN)
# the messages that are a filing season's contacts: those the reminder history holds (contract §1.6)
SEASON_PURPOSES = tuple(p for p, _ in PURPOSES)


def limits() -> tuple[int, int]:
    """(days between contacts, contacts per season)."""
    return (int(config.get("QIFU_MIN_DAYS_BETWEEN", "7") or 7), int(config.get("QIFU_MAX_PER_SEASON", "4") or 4))


def waiting_contacts(today: dt.date, usccs: list[str] | None = None) -> pl.DataFrame:
    """(uscc, day) of this season's filing reminders and correction notices still waiting to go out."""
    qs = OutboxMessage.objects.filter(planned_for__gte=dt.date(today.year, 1, 1), status__in=WAITING,
                                      purpose__in=SEASON_PURPOSES)
    if usccs is not None:
        qs = qs.filter(entity_id__in=usccs)
    return pl.DataFrame(list(qs.values_list("entity_id", "planned_for")), schema={"uscc": pl.Utf8, "day": pl.Date},
                        orient="row")


def per_entity(days: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """(uscc, day) of contacts -> this season's count and last day before ``today``, per entity."""
    return (days.filter((pl.col("day") >= dt.date(today.year, 1, 1)) & (pl.col("day") < today))
            .group_by("uscc").agg(pl.len().alias("season_contacts"), pl.col("day").max().alias("last_contact")))


def season_stats(done: pl.DataFrame, waiting: pl.DataFrame, today: dt.date) -> pl.DataFrame:
    """The contacts made (``done``: uscc, season_contacts, last_contact) and the ones waiting
    ((uscc, day)), added up per entity."""
    typed = [pl.col("uscc").cast(pl.Utf8), pl.col("season_contacts").cast(pl.UInt32), pl.col("last_contact").cast(pl.Date)]
    return (pl.concat([done.select(typed), per_entity(waiting, today).select(typed)])
            .group_by("uscc").agg(pl.col("season_contacts").sum(), pl.col("last_contact").max()))


def history_stats(today: dt.date, usccs: list[str]) -> pl.DataFrame:
    """The season's contacts of ``usccs`` from the history and the outbox (for a handful of
    entities; the daily run counts the whole county its own faster way)."""
    from qifu.reminders.models import ReminderRecord

    start = timezone.make_aware(dt.datetime(today.year, 1, 1))
    rows = ReminderRecord.objects.filter(entity_id__in=usccs, sent_at__gte=start).values_list("entity_id", "sent_at")
    days = pl.DataFrame([(u, timezone.localtime(at).date()) for u, at in rows], schema={"uscc": pl.Utf8, "day": pl.Date},
                        orient="row")
    done = per_entity(days, today)
    return season_stats(done, waiting_contacts(today, usccs), today)


def flag(rows: pl.DataFrame, stats: pl.DataFrame, today: dt.date, capped_groups: bool = True) -> pl.DataFrame:
    """``rows`` with ``spaced`` and ``capped`` (both true: the contact may be made today). With
    a ``group`` column, the holdout is exempt from the cap (it gets the blanket practice)."""
    min_days, cap = limits()
    rows = rows.join(stats, on="uscc", how="left").with_columns(pl.col("season_contacts").fill_null(0))
    spaced = pl.col("last_contact").is_null() | ((pl.lit(today) - pl.col("last_contact")).dt.total_days() >= min_days)
    capped = pl.col("season_contacts") < cap
    if "group" in rows.columns:
        capped = capped | (pl.col("group") == "holdout")
    return rows.with_columns(spaced.alias("spaced"), capped.alias("capped"))


def resolve_channel(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` (columns ``channel``: the wish, ``phone``, ``email``, and optionally
    ``alt_phone``, ``alt_email`` to fall back on) with the channel that can reach them and its
    ``recipient``. A wished call or visit stays one; a text goes to the first mobile number
    not opted out, else an email to the first address not opted out, else a call to the first
    number, else a visit."""
    opted = list(OptOut.objects.values_list("recipient", flat=True))

    def clean(name: str) -> pl.Expr:
        return pl.col(name).fill_null("").cast(pl.Utf8).str.strip_chars() if name in rows.columns else pl.lit("")

    phones = [clean(c) for c in ("phone", "alt_phone")]
    emails = [clean(c) for c in ("email", "alt_email")]
    channel = pl.when(pl.col("channel") != "sms").then(pl.col("channel"))
    recipient = (pl.when(pl.col("channel") == "call").then(phones[0])
                 .when(pl.col("channel") == "email").then(emails[0])
                 .when(pl.col("channel") != "sms").then(pl.lit("")))
    for p in phones:
        reachable = p.str.contains(MOBILE) & ~p.is_in(opted)
        channel, recipient = channel.when(reachable).then(pl.lit("sms")), recipient.when(reachable).then(p)
    for e in emails:
        reachable = e.str.contains("@") & ~e.is_in(opted)
        channel, recipient = channel.when(reachable).then(pl.lit("email")), recipient.when(reachable).then(e)
    for p in phones:
        channel, recipient = channel.when(p != "").then(pl.lit("call")), recipient.when(p != "").then(p)
    return rows.with_columns(channel.otherwise(pl.lit("visit")).alias("channel"),
                             recipient.otherwise(pl.lit("")).alias("recipient"))


def reach(phone: str, email: str, alt_phone: str = "", alt_email: str = "") -> tuple[str, str]:
    """``resolve_channel`` for one recipient wishing a text: (channel, recipient)."""
    names = ("channel", "phone", "email", "alt_phone", "alt_email")
    row = resolve_channel(pl.DataFrame([("sms", phone, email, alt_phone, alt_email)], schema=dict.fromkeys(names, pl.String),
                                       orient="row"))
    return row["channel"][0], row["recipient"][0]


def tell_once(key: str, entity_id: str, purpose: str, phone: str, email: str, body: str, reason: str,
              now: dt.datetime, addressee: str = OutboxMessage.Addressee.ENTITY) -> OutboxMessage | None:
    """A written notice to one recipient (``reach``: a text, else an email) stored in the outbox
    once under ``key``, for the sender to deliver; None when neither reaches them. ``addressee``:
    the entity ``entity_id`` itself, or an expert the message about it is to."""
    channel, recipient = reach(phone, email)
    if channel not in ("sms", "email") or not recipient:
        return None
    message, _ = OutboxMessage.objects.get_or_create(key=key, defaults=dict(
        entity_id=entity_id, addressee=addressee, purpose=purpose, channel=channel, recipient=recipient, body=body,
        reason=reason, planned_for=timezone.localdate(now), next_attempt_at=now))
    return message


def told(keys) -> set[str]:
    """Those of ``keys`` already stored in the outbox: notices ``tell_once`` will not store again."""
    return set(OutboxMessage.objects.filter(key__in=list(keys)).values_list("key", flat=True))


def in_writing(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``rows`` (``phone``, ``email``, as ``resolve_channel`` reads them) that a text
    or an email reaches, with that ``channel`` and its ``recipient``: for a notice that is
    written or not sent at all (a firm reached by neither is left to staff)."""
    rows = resolve_channel(rows.with_columns(pl.lit("sms").alias("channel")))
    return rows.filter(pl.col("channel").is_in(["sms", "email"]) & (pl.col("recipient") != ""))
