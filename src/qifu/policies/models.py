"""Policy funding delivered without asking (惠企政策直达, 免申即享): policies as data with their
versions, each match of a firm and a policy, the firm's confirmation or application, the ledger
of installments, the payment batches sent to the treasury and the treasury's answer."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone

from qifu.registry.models import MONEY, Entity, Township


class Policy(models.Model):
    """A policy as staff wrote it (YAML, contract §1.10); ``version`` is the digest of the
    current text, and every version is kept in ``PolicyVersion``."""

    class Mode(models.TextChoices):
        AUTOMATIC = "automatic", "免申即享"
        APPLICATION = "application", "需申请"

    code = models.CharField("政策编号", max_length=40, unique=True)
    title = models.CharField("政策名称", max_length=200)
    year = models.PositiveSmallIntegerField("数据年度")
    mode = models.CharField("兑现方式", max_length=12, choices=Mode.choices)
    kind = models.CharField("类型", max_length=10, choices=[("profile", "按企业画像匹配"), ("skills", "职业技能等级证书补贴")],
                            default="profile")
    category = models.CharField("类别", max_length=50, blank=True)
    department = models.CharField("主管部门", max_length=100, blank=True)
    summary = models.TextField("政策说明", blank=True)
    basis = models.CharField("文件依据", max_length=300, blank=True)
    eligible = models.TextField("享受条件")
    amount = models.TextField("金额（万元）")
    budget = models.DecimalField("预算（万元）", **MONEY)
    installments = models.JSONField("分期比例", default=list)  # ["0.6", "0.4"]
    milestones = models.JSONField("拨付节点", default=list)
    version = models.CharField("版本", max_length=12)
    text = models.TextField("政策（YAML）")
    updated_at = models.DateTimeField("更新时间")
    # the digest of the last match's rows (firm, amount, reason) and version: a match that
    # gives the same rows has nothing to store
    last_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "惠企政策"
        ordering = ["-year", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class PolicyVersion(models.Model):
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField("版本", max_length=12)
    text = models.TextField("政策（YAML）")
    created_at = models.DateTimeField("创建时间")
    # who wrote it in the browser (empty: loaded from a folder by `qifu policy match`)
    created_by = models.CharField("修改人", max_length=100, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "政策版本"
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="policy_version_unique")]


class MatchRun(models.Model):
    """保存并匹配 from the browser: the policy's new version is saved at once and matched by
    `qifu worker` (``actions.run_pending_matches``), which writes its phase here as it goes; the
    page that asked follows it and, once done, says what was found."""

    class Status(models.TextChoices):
        QUEUED = "queued", "排队中"
        RUNNING = "running", "匹配中"
        DONE = "done", "已完成"
        FAILED = "failed", "未完成"

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="runs", verbose_name="政策")
    version = models.CharField("保存的版本", max_length=12)
    notify = models.BooleanField("通知新符合条件的企业", default=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="+", verbose_name="保存人")
    status = models.CharField("状态", max_length=8, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField("进行到", max_length=20, blank=True)
    attempts = models.PositiveSmallIntegerField("尝试次数", default=0)
    created_at = models.DateTimeField("保存时间")
    started_at = models.DateTimeField("开始匹配", null=True, blank=True)
    finished_at = models.DateTimeField("结束时间", null=True, blank=True)
    summary = models.CharField("结果", max_length=300, blank=True)
    warnings = models.JSONField("提示", default=list)
    error = models.CharField("未完成原因", max_length=300, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "政策匹配任务"
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.policy.code} 匹配（{self.get_status_display()}）"

    @property
    def made_version(self) -> bool:
        """Whether its save made the version it matches (False: the text was one saved before,
        and only the match was made again)."""
        return PolicyVersion.objects.filter(policy_id=self.policy_id, version=self.version,
                                            created_at=self.created_at).exists()


def history_line(at: dt.datetime, by: str, note: str) -> dict:
    """One line of a match's or a payment's history: when (local time, to the second), who, what."""
    return {"at": timezone.localtime(at).isoformat(timespec="seconds"), "by": by, "note": note}


class Match(models.Model):
    """A firm eligible for a policy (§2.4), and what became of it."""

    class Status(models.TextChoices):
        ELIGIBLE = "eligible", "待确认"  # automatic: told, awaiting the bank account; application: invited
        APPLIED = "applied", "已申请"
        CONFIRMED = "confirmed", "已确认"  # automatic: account confirmed; application: approved
        HELD = "held", "待复核"  # a check before paying failed; staff decide
        PAID = "paid", "已兑现"  # every installment paid
        LAPSED = "lapsed", "不再符合"  # no longer eligible at a later match, before being paid in full
        REJECTED = "rejected", "未通过"
        # the firm said it does not want the policy (放弃); it may take that back while it is still
        # eligible (``lapsed_at`` empty: a later match run that no longer finds it sets it)
        DECLINED = "declined", "已放弃"

    # No index of their own on the three keys below: the unique constraint and the indexes in
    # Meta begin with them, and each index more slows the first match's 165,000 inserts.
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="matches", db_index=False)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="policy_matches",
                               db_index=False)
    # the firm's township when it was matched: township isolation and the measures by township
    # read it without joining 240,000 entities
    town = models.ForeignKey(Township, on_delete=models.PROTECT, null=True, verbose_name="所属镇街", db_index=False)
    version = models.CharField("匹配时的政策版本", max_length=12)
    amount = models.DecimalField("金额（万元）", max_digits=20, decimal_places=6)
    reason = models.TextField("符合理由")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.ELIGIBLE)
    eligible_on = models.DateField("符合条件日期")
    matched_at = models.DateTimeField("最近匹配时间")
    confirmed_at = models.DateTimeField("确认时间", null=True, blank=True)
    lapsed_at = models.DateTimeField("不再符合时间", null=True, blank=True)  # lapsed, or declined and since gone
    # when the firm gave up the rest of a policy it had accepted (放弃其余资金): a decline that
    # cannot be taken back. Stored, not read off ``confirmed_at``: a match confirmed, held, then
    # lapsed and eligible again keeps ``confirmed_at``, and declining it then is a plain decline.
    gave_up_at = models.DateTimeField("放弃其余资金时间", null=True, blank=True)
    # when the firm was told of this match through the outbox (免申即享: to confirm; 需申请: invited
    # to apply); empty while it has not been, for instance while neither text nor email reaches it
    told_at = models.DateTimeField("通知时间", null=True, blank=True)
    # stored by a match run told not to notify anyone (`qifu policy match --no-notify`): the
    # morning's telling of firms reached since (``notices.tell_reached``) leaves it to the next
    # run that notifies
    quiet = models.BooleanField("暂不通知", default=False)
    # when a firm that had neither confirmed its account nor applied ``notices.FOLLOW_UP_DAYS``
    # after being told was reminded, once
    followed_up_at = models.DateTimeField("提醒确认时间", null=True, blank=True)
    hold_reason = models.CharField("复核原因", max_length=500, blank=True)
    bank_name = models.CharField("开户银行", max_length=100, blank=True)
    bank_account = models.CharField("银行账号", max_length=40, blank=True)
    account_name = models.CharField("账户名称", max_length=200, blank=True)
    # [{"at", "by", "note"}] of what became of the match. A new match stores none: the line of
    # its making follows from the row (``made``), and is written out before the first line
    # added (``add_history``), while the row still holds the version and amount it was made
    # with. A first match run stores 165,000 rows; a line each was a third of their bytes.
    history = models.JSONField("变更记录", default=list)

    class Meta:
        verbose_name = verbose_name_plural = "政策匹配"
        # a firm first: the unique index also finds a firm's matches (at most a few dozen), so
        # that no index of its own slows the inserts
        constraints = [models.UniqueConstraint(fields=["entity", "policy"], name="match_unique")]
        indexes = [models.Index(fields=["policy", "status"]), models.Index(fields=["town", "status"])]

    def made(self) -> dict:
        """The history's line of the match's making, from the row as it was made."""
        return history_line(self.matched_at, "系统",
                            f"按政策版本 {self.version} 匹配：符合条件，金额 {self.amount.normalize():f} 万元")

    @property
    def events(self) -> list[dict]:
        """The history, beginning with the match's making."""
        return self.history or [self.made()]

    def add_history(self, line: dict) -> None:
        """Adds ``line`` to the history (the caller saves it). Call it before changing the
        version, the amount or the time matched: the first line added writes out the line of
        the match's making from them."""
        self.history = [*self.events, line]

    @property
    def declined_and_gone(self) -> bool:
        """Declined by the firm, and no longer eligible at a later match run: it cannot be taken
        back."""
        return self.status == self.Status.DECLINED and self.lapsed_at is not None

    @property
    def gave_up_rest(self) -> bool:
        """Declined after accepting it (account confirmed, or application approved): what was
        due was cancelled; it cannot be taken back."""
        return self.status == self.Status.DECLINED and self.gave_up_at is not None

    @property
    def application_or_none(self):
        """The firm's application under an application policy, or None (none handed in, or an
        automatic policy)."""
        try:
            return self.application
        except ObjectDoesNotExist:
            return None

    @property
    def masked_account(self) -> str:
        a = self.bank_account
        return f"{a[:4]}{'*' * max(len(a) - 8, 4)}{a[-4:]}" if len(a) > 8 else ("****" if a else "")


class Application(models.Model):
    """A firm's application under an application policy (需申请): its statement and
    attachments, the department's review with reasons."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "待审核"
        APPROVED = "approved", "已通过"
        REJECTED = "rejected", "未通过"
        # the firm took it back before the review (to hand in other papers, or not at all); a
        # new application takes this one's place
        WITHDRAWN = "withdrawn", "已撤回"
        # the department sent it back for what is missing (退回补正); the firm hands it in again
        RETURNED = "returned", "退回补正"

    match = models.OneToOneField(Match, on_delete=models.CASCADE, related_name="application")
    project = models.CharField("申报项目", max_length=200, blank=True)
    project_code = models.CharField("项目编号", max_length=60, blank=True, db_index=True)
    statement = models.TextField("申请说明")
    submitted_at = models.DateTimeField("提交时间")
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.SUBMITTED)
    reviewed_at = models.DateTimeField("审核时间", null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    review_reason = models.TextField("审核意见", blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "政策申请"


class ApplicationFile(models.Model):
    """An attachment, kept with the requests' attachments (``service_requests.attachments``)."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="files")
    name = models.CharField("文件名", max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)


class PaymentBatch(models.Model):
    """Payments sent to the treasury together (拨付批次). Its file is made from the stored lines,
    so exporting it again gives the same bytes and pays nothing twice."""

    class Status(models.TextChoices):
        EXPORTED = "exported", "已导出待回执"
        RECONCILED = "reconciled", "已对账"

    number = models.CharField("批次号", max_length=20, unique=True)
    created_at = models.DateTimeField("创建时间")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField("状态", max_length=12, choices=Status.choices, default=Status.EXPORTED)
    total = models.DecimalField("金额合计（万元）", max_digits=20, decimal_places=6, default=0)
    lines = models.PositiveIntegerField("笔数", default=0)
    reconciled_at = models.DateTimeField("对账时间", null=True, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "拨付批次"
        ordering = ["-created_at"]


class Payment(models.Model):
    """One installment of one match: the ledger line. ``(match, seq)`` is unique, so an
    installment exists once; its amount counts against the policy's budget from release on."""

    class Status(models.TextChoices):
        DUE = "due", "待拨付"
        BATCHED = "batched", "拨付中"
        PAID = "paid", "已到账"
        FAILED = "failed", "拨付失败"
        CANCELLED = "cancelled", "已取消"

    match = models.ForeignKey(Match, on_delete=models.PROTECT, related_name="payments")
    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="payments")
    seq = models.PositiveSmallIntegerField("期次")
    # a skill subsidy: the certificate paid, and who for what (id number, occupation, level)
    certificate = models.OneToOneField("SkillCertificate", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="payment")
    person_key = models.CharField("补贴对象", max_length=160, blank=True)
    amount = models.DecimalField("金额（万元）", max_digits=20, decimal_places=6)
    milestone = models.CharField("拨付节点", max_length=100)
    status = models.CharField("状态", max_length=10, choices=Status.choices, default=Status.DUE)
    released_at = models.DateTimeField("核准时间")
    batch = models.ForeignKey(PaymentBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    # who is paid, as it stood when the line was batched (the treasury file is made from this, so
    # a later change of account, name or title cannot change a batch already sent)
    payee = models.JSONField("收款信息", default=dict, blank=True)
    paid_on = models.DateField("到账日期", null=True, blank=True)
    failure = models.CharField("失败原因", max_length=300, blank=True)
    history = models.JSONField("变更记录", default=list)

    class Meta:
        verbose_name = verbose_name_plural = "拨付台账"
        constraints = [
            models.UniqueConstraint(fields=["match", "seq"], name="payment_once"),
            # one person is paid once per occupation and level, under any policy and year
            models.UniqueConstraint(fields=["person_key"], condition=~models.Q(person_key=""), name="skill_paid_once"),
        ]
        indexes = [models.Index(fields=["policy", "status"])]


class SkillCertificate(models.Model):
    """A worker's vocational-skill certificate (职业技能等级证书), imported from the human-resources
    bureau; the identity number and name are personal data: masked in every list, shown whole
    only through an audited reveal."""

    certificate_no = models.CharField("证书编号", max_length=60, unique=True)
    id_number = models.CharField("身份证号", max_length=18, db_index=True)
    person_name = models.CharField("姓名", max_length=50)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, db_column="uscc", related_name="skill_certificates",
                               verbose_name="用人单位")
    occupation = models.CharField("职业(工种)", max_length=100)
    level = models.CharField("技能等级", max_length=1, choices=[("5", "五级/初级工"), ("4", "四级/中级工"),
                                                          ("3", "三级/高级工"), ("2", "二级/技师"), ("1", "一级/高级技师")])
    issued_on = models.DateField("发证日期")
    training_hours = models.IntegerField("培训学时", null=True, blank=True)
    match = models.ForeignKey(Match, null=True, blank=True, on_delete=models.SET_NULL, related_name="certificates")
    imported_at = models.DateTimeField("导入时间")

    class Meta:
        verbose_name = verbose_name_plural = "职业技能等级证书"
        indexes = [models.Index(fields=["issued_on"])]

    @property
    def masked_id(self) -> str:
        return f"{self.id_number[:4]}{'*' * 10}{self.id_number[-4:]}"

    @property
    def masked_name(self) -> str:
        return self.person_name[:1] + "*" * max(len(self.person_name) - 1, 1)
