"""Per-entity features from what a bureau has: past filing dates, past reminders and their
delivery statuses, tax and social-security activity, entity type, age and phone.

Nothing here reads the synthetic county's hidden behaviour: the same function serves the
simulator and a real county's data.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl

from qifu.engine import season

MOBILE = re.compile(r"^(\+?86-?)?1[3-9][0-9]{9}$")
FOLLOW_SMS_DAYS = 7
FOLLOW_CALL_DAYS = 5
CLASSES = ("self", "sms", "call", "missed")  # how the entity filed in a season


def season_days(filing_year: int) -> tuple[dt.date, int]:
    return season.opens(filing_year - 1), season.length(filing_year - 1)


def phone_kind(phones: pl.Series) -> np.ndarray:
    """0 none, 1 mobile, 2 other (landline)."""
    p = phones.fill_null("").str.strip_chars()
    mobile = p.str.contains(r"^(\+?86-?)?1[3-9][0-9]{9}$")
    return np.where(p == "", 0, np.where(mobile, 1, 2)).astype(np.int8)


def season_table(uscc: pl.Series, filings: pl.DataFrame, reminders: pl.DataFrame, filing_year: int) -> pl.DataFrame:
    """One row per entity for one past season: when it filed and how that related to contacts.

    ``filings``: uscc, filed_at (datetime) for the report filed in ``filing_year``;
    ``reminders``: uscc, sent_at, channel, status for that season.
    """
    start, deadline = season_days(filing_year)
    base = pl.DataFrame({"uscc": uscc})
    f = filings.select("uscc", ((pl.col("filed_at").dt.date() - pl.lit(start)).dt.total_days()).alias("filed_day"))
    r = reminders.filter(pl.col("sent_at").dt.year() == filing_year).select(
        "uscc", "channel", "status", ((pl.col("sent_at").dt.date() - pl.lit(start)).dt.total_days()).alias("day")
    )
    reached = r.filter(pl.col("status") != "failed")
    follow = (
        reached.join(f, on="uscc")
        .with_columns((pl.col("filed_day") - pl.col("day")).alias("gap"))
        .group_by("uscc")
        .agg(
            ((pl.col("channel") == "sms") & pl.col("gap").is_between(1, FOLLOW_SMS_DAYS)).any().alias("followed_sms"),
            ((pl.col("channel").is_in(["call", "visit"])) & pl.col("gap").is_between(0, FOLLOW_CALL_DAYS)).any().alias("followed_call"),
        )
    )
    counts = r.group_by("uscc").agg(
        (pl.col("channel") == "sms").sum().alias("sms_sent"),
        ((pl.col("channel") == "sms") & (pl.col("status") == "failed")).sum().alias("sms_failed"),
        (pl.col("channel") == "call").sum().alias("calls"),
        ((pl.col("channel") == "call") & (pl.col("status") == "failed")).sum().alias("calls_failed"),
    )
    out = base.join(f, on="uscc", how="left").join(follow, on="uscc", how="left").join(counts, on="uscc", how="left")
    out = out.with_columns(
        pl.col("followed_sms", "followed_call").fill_null(False),
        pl.col("sms_sent", "sms_failed", "calls", "calls_failed").fill_null(0),
        (pl.col("filed_day").is_not_null() & (pl.col("filed_day") <= deadline)).alias("on_time"),
        (pl.col("filed_day").is_not_null() & (pl.col("filed_day") > deadline)).alias("late"),
    )
    label = (
        pl.when(~pl.col("on_time")).then(3)
        .when(pl.col("followed_call")).then(2)
        .when(pl.col("followed_sms")).then(1)
        .otherwise(0)
    )
    return out.with_columns(label.alias("label"), pl.lit(filing_year).alias("filing_year"))


def build(registry: pl.DataFrame, seasons: list[pl.DataFrame], activity: pl.DataFrame, as_of: dt.date) -> tuple[pl.DataFrame, np.ndarray]:
    """Features for each registry entity from past ``seasons`` (oldest first, ``season_table``
    output) and last year's ``activity`` (uscc, tax_paid, insured_count). Returns (frame, matrix)."""
    feats = registry.select(
        "uscc",
        (pl.col("entity_type") == "enterprise").cast(pl.Int8).alias("is_enterprise"),
        (pl.col("entity_type") == "individual").cast(pl.Int8).alias("is_individual"),
        ((pl.lit(as_of) - pl.col("established_on")).dt.total_days() / 365.25).alias("age_years"),
        pl.Series("phone_kind", phone_kind(registry["phone"])),
    )
    established = registry.select("uscc", "established_on")
    for i, s in enumerate(reversed(seasons)):  # i = 0: the most recent season
        year_end = dt.date(int(s["filing_year"][0]) - 1, 12, 31)
        s = s.join(established, on="uscc", how="left")
        cols = s.select(
            "uscc",
            (pl.col("established_on") <= year_end).cast(pl.Int8).alias(f"due_{i}"),
            pl.col("on_time").cast(pl.Int8).alias(f"on_time_{i}"),
            pl.col("late").cast(pl.Int8).alias(f"late_{i}"),
            pl.col("filed_day").fill_null(400).clip(upper_bound=400).alias(f"filed_day_{i}"),
            pl.col("followed_sms").cast(pl.Int8).alias(f"followed_sms_{i}"),
            pl.col("followed_call").cast(pl.Int8).alias(f"followed_call_{i}"),
            pl.col("sms_sent").alias(f"sms_sent_{i}"),
            pl.col("sms_failed").alias(f"sms_failed_{i}"),
            pl.col("calls").alias(f"calls_{i}"),
            pl.col("calls_failed").alias(f"calls_failed_{i}"),
        )
        feats = feats.join(cols, on="uscc", how="left")
    n = len(seasons)
    feats = feats.with_columns(
        pl.sum_horizontal([pl.col(f"due_{i}") for i in range(n)]).alias("n_due"),
        pl.sum_horizontal([pl.col(f"on_time_{i}") for i in range(n)]).alias("n_on_time"),
        pl.sum_horizontal([pl.col(f"late_{i}") for i in range(n)]).alias("n_late"),
        pl.sum_horizontal([pl.col(f"followed_sms_{i}") for i in range(n)]).alias("n_followed_sms"),
        pl.sum_horizontal([pl.col(f"followed_call_{i}") for i in range(n)]).alias("n_followed_call"),
        pl.sum_horizontal([pl.col(f"sms_failed_{i}") for i in range(n)]).alias("n_sms_failed"),
        pl.sum_horizontal([pl.col(f"sms_sent_{i}") for i in range(n)]).alias("n_sms_sent"),
        pl.sum_horizontal([pl.col(f"calls_failed_{i}") for i in range(n)]).alias("n_calls_failed"),
        pl.sum_horizontal([pl.col(f"calls_{i}") for i in range(n)]).alias("n_calls"),
    )
    feats = feats.join(
        activity.select("uscc", ((pl.col("tax_paid").fill_null(0) > 0) | (pl.col("declared_sales").fill_null(0) > 0))
                        .cast(pl.Int8).alias("pays_tax"),
                        (pl.col("insured_count").fill_null(0) > 0).cast(pl.Int8).alias("insures")),
        on="uscc", how="left",
    ).with_columns(pl.col("pays_tax", "insures").fill_null(0))
    feats = feats.with_columns(pl.all().exclude("uscc").fill_null(0))
    matrix = feats.drop("uscc").to_numpy().astype(np.float64)
    return feats, matrix
