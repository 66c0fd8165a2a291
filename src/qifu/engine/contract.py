"""The interchange contract v1, §1 (files in) and §2 (files out), as data.

One definition serves the importer, the synthetic county and the exports, so a field cannot
be spelled two ways. The published contract is ``shared/contract/README.md``; ``docs/contract.md``
is the project's own copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class T(StrEnum):
    """Value types of contract fields."""

    STR = "str"
    INT = "int"  # headcounts: whole, never negative
    YEAR = "year"
    MONEY = "money"  # 万元, decimal, up to 6 decimals
    DECIMAL = "decimal"  # another quantity (亩, 万千瓦时, 吨标准煤), up to 6 decimals
    DATE = "date"
    DATETIME = "datetime"  # naive values are Asia/Shanghai
    BOOL = "bool"
    ENUM = "enum"
    USCC = "uscc"
    IDNUM = "idnum"  # a resident identity number (GB 11643): 17 digits and a check character
    TIME = "time"  # a time of day, HH:MM


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: T
    required: bool = False
    negative_ok: bool = False  # money that may be negative (equity, profit, surplus)
    choices: tuple[tuple[str, str], ...] = ()  # (english value, 中文 label)
    max_length: int | None = None


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    applies_to: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


ENTITY_TYPES = (("enterprise", "企业"), ("individual", "个体工商户"), ("cooperative", "农民专业合作社"))
REGISTRY_STATUSES = (("active", "存续"), ("revoked", "吊销"), ("cancelled", "注销"), ("moved_out", "迁出"))
OPERATING_STATUSES = (("open", "开业"), ("suspended", "歇业"), ("liquidating", "清算"))
CHANNELS = (
    ("sms", "短信"),
    ("email", "邮件"),
    ("call", "电话"),
    ("wechat", "微信"),
    ("letter", "信函"),
    ("visit", "上门"),
)
PURPOSES = (("filing", "催报"), ("correction", "更正"))
DELIVERY_STATUSES = (("delivered", "已送达"), ("failed", "失败"), ("unknown", "未知"))
PAID_IN_FORMS = ("货币", "实物", "知识产权", "土地使用权", "股权", "债权", "其他")

USCC = Field("uscc", "统一社会信用代码", T.USCC, required=True)

REGISTRY = Kind(
    "registry",
    "市场主体登记信息",
    key=("uscc",),
    fields=(
        USCC,
        Field("name", "名称", T.STR, required=True, max_length=200),
        Field("entity_type", "主体类型", T.ENUM, required=True, choices=ENTITY_TYPES),
        Field("legal_form", "企业类型", T.STR, max_length=50),
        Field("industry_code", "行业代码", T.STR, max_length=5),
        Field("town", "所属镇街", T.STR, required=True, max_length=50),
        Field("address", "住所", T.STR, max_length=300),
        Field("registered_capital", "注册资本(万元)", T.MONEY),
        Field("established_on", "成立日期", T.DATE, required=True),
        Field("status", "登记状态", T.ENUM, required=True, choices=REGISTRY_STATUSES),
        Field("legal_rep", "法定代表人", T.STR, max_length=100),
        Field("phone", "联系电话", T.STR, max_length=50),
        Field("email", "电子邮箱", T.STR, max_length=200),
    ),
)

_ALL = frozenset({"enterprise", "individual", "cooperative"})
_ENT = frozenset({"enterprise"})
_ENT_COOP = frozenset({"enterprise", "cooperative"})
_IND = frozenset({"individual"})
_COOP = frozenset({"cooperative"})


def _money(name: str, label: str, negative_ok: bool = False) -> Field:
    return Field(name, label, T.MONEY, negative_ok=negative_ok)


def _count(name: str, label: str) -> Field:
    return Field(name, label, T.INT)


REPORT_FIELDS: tuple[tuple[Field, frozenset[str]], ...] = (
    (USCC, _ALL),
    (Field("report_year", "报告年度", T.YEAR, required=True), _ALL),
    (Field("filed_at", "报送时间", T.DATETIME, required=True), _ALL),
    (Field("phone", "企业联系电话", T.STR, max_length=50), _ALL),
    (Field("email", "电子邮箱", T.STR, max_length=200), _ALL),
    (Field("postcode", "邮政编码", T.STR, max_length=20), _ALL),
    (Field("contact_address", "通信地址", T.STR, max_length=300), _ALL),
    (Field("operating_status", "经营状态", T.ENUM, choices=OPERATING_STATUSES), _ALL),
    (Field("main_business_activity", "主营业务活动", T.STR, max_length=500), _ENT_COOP),
    (_count("employees", "从业人数"), _ALL),
    (_count("employees_female", "其中女性从业人数"), _ENT_COOP),
    (Field("has_website", "是否有网站或网店", T.BOOL), _ALL),
    (_money("total_assets", "资产总额"), _ENT),
    (_money("total_liabilities", "负债总额"), _ENT),
    (_money("total_equity", "所有者权益合计", negative_ok=True), _ENT),
    (_money("total_revenue", "营业总收入"), _ENT),
    (_money("main_business_revenue", "其中:主营业务收入"), _ENT),
    (_money("total_profit", "利润总额", negative_ok=True), _ENT),
    (_money("net_profit", "净利润", negative_ok=True), _ENT),
    (_money("total_tax_paid", "纳税总额"), _ALL),
    (_money("turnover", "营业额或营业收入"), _IND),
    (_count("coop_members", "成员人数"), _COOP),
    (_money("coop_sales", "销售额或营业收入"), _COOP),
    (_money("coop_surplus", "盈余总额", negative_ok=True), _COOP),
    (_money("coop_gov_subsidies", "获得政府扶持资金、补助"), _COOP),
    (_money("coop_bank_loans", "金融贷款"), _COOP),
    (_count("si_pension_insured", "城镇职工基本养老保险参保人数"), _ENT),
    (_count("si_unemployment_insured", "失业保险参保人数"), _ENT),
    (_count("si_medical_insured", "职工基本医疗保险参保人数"), _ENT),
    (_count("si_injury_insured", "工伤保险参保人数"), _ENT),
    (_count("si_maternity_insured", "生育保险参保人数"), _ENT),
    (_money("si_base_pension", "单位缴费基数(养老)"), _ENT),
    (_money("si_base_unemployment", "单位缴费基数(失业)"), _ENT),
    (_money("si_base_medical", "单位缴费基数(医疗)"), _ENT),
    (_money("si_base_maternity", "单位缴费基数(生育)"), _ENT),
    (_money("si_paid_pension", "本期实际缴费金额(养老)"), _ENT),
    (_money("si_paid_unemployment", "本期实际缴费金额(失业)"), _ENT),
    (_money("si_paid_medical", "本期实际缴费金额(医疗)"), _ENT),
    (_money("si_paid_injury", "本期实际缴费金额(工伤)"), _ENT),
    (_money("si_paid_maternity", "本期实际缴费金额(生育)"), _ENT),
    (_money("si_arrears_total", "单位累计欠缴金额(合计)"), _ENT),
)

REPORTS = Kind(
    "reports",
    "年度报告",
    key=("uscc", "report_year"),
    fields=tuple(f for f, _ in REPORT_FIELDS),
    applies_to={f.name: who for f, who in REPORT_FIELDS},
)

SHAREHOLDERS = Kind(
    "shareholders",
    "股东及出资信息",
    key=("uscc", "report_year", "shareholder_name"),
    fields=(
        USCC,
        Field("report_year", "报告年度", T.YEAR, required=True),
        Field("shareholder_name", "股东(发起人)", T.STR, required=True, max_length=200),
        _money("subscribed_amount", "认缴出资额(万元)"),
        Field("subscribed_due_date", "认缴出资时间", T.DATE),
        _money("paid_in_amount", "实缴出资额(万元)"),
        Field("paid_in_date", "实缴出资时间", T.DATE),
        Field("paid_in_form", "实缴出资方式", T.STR, max_length=20),
    ),
)

TAX = Kind(
    "tax",
    "税务数据",
    key=("uscc", "year"),
    fields=(
        USCC,
        Field("year", "年度", T.YEAR, required=True),
        _money("declared_sales", "申报销售收入"),
        _money("tax_paid", "实缴税额"),
    ),
)

SOCIAL = Kind(
    "social",
    "社保数据",
    key=("uscc", "year"),
    fields=(
        USCC,
        Field("year", "年度", T.YEAR, required=True),
        _count("insured_count", "年末参保人数"),
        _money("arrears", "欠缴金额"),
    ),
)

REMINDERS = Kind(
    "reminders",
    "历史提醒记录",
    key=("uscc", "sent_at", "channel"),
    fields=(
        USCC,
        Field("sent_at", "发送时间", T.DATETIME, required=True),
        Field("channel", "渠道", T.ENUM, required=True, choices=CHANNELS),
        Field("purpose", "事由", T.ENUM, required=True, choices=PURPOSES),
        Field("status", "状态", T.ENUM, required=True, choices=DELIVERY_STATUSES),
    ),
)

REQUEST_CHANNELS = (("hotline", "12345热线"), ("station", "企服驿站"), ("portal", "网上"), ("visit", "走访"),
                    ("open311", "接口"))
REQUEST_STATUSES = (("open", "办理中"), ("closed", "已办结"))
SATISFACTIONS = (("satisfied", "满意"), ("basically", "基本满意"), ("dissatisfied", "不满意"))


def _request_categories() -> tuple[tuple[str, str], ...]:
    from qifu.engine.requests.categories import CATEGORIES

    return tuple((c.code, c.name) for c in CATEGORIES)


REQUESTS = Kind(
    "requests",
    "企业诉求",
    key=("request_id",),
    fields=(
        Field("request_id", "诉求编号", T.STR, required=True, max_length=40),
        Field("uscc", "统一社会信用代码", T.USCC),
        Field("submitted_at", "受理时间", T.DATETIME, required=True),
        Field("channel", "渠道", T.ENUM, required=True, choices=REQUEST_CHANNELS),
        Field("town", "所属镇街", T.STR, max_length=50),
        Field("category", "诉求类别", T.ENUM, choices=_request_categories()),
        Field("text", "诉求内容", T.STR, required=True, max_length=4000),
        Field("department", "承办部门", T.STR, max_length=100),
        Field("status", "状态", T.ENUM, required=True, choices=REQUEST_STATUSES),
        Field("closed_at", "办结时间", T.DATETIME),
        Field("satisfaction", "满意度", T.ENUM, choices=SATISFACTIONS),
    ),
)

PARCEL_ROLES = (("owner", "自有"), ("tenant", "租用"))

PARCELS = Kind(
    "parcels",
    "工业用地宗地",
    key=("parcel_id", "uscc"),
    fields=(
        Field("parcel_id", "宗地编号", T.STR, required=True, max_length=60),
        USCC,
        Field("role", "权属", T.ENUM, required=True, choices=PARCEL_ROLES),
        Field("area_mu", "用地面积(亩)", T.DECIMAL, required=True),
        Field("town", "所属镇街", T.STR, required=True, max_length=50),
        Field("land_use", "土地用途", T.STR, max_length=50),
        Field("floor_area_ratio", "容积率", T.DECIMAL),
        Field("idle", "是否闲置", T.BOOL),
    ),
)

INDICATORS = Kind(
    "indicators",
    "亩均效益评价指标",
    key=("uscc", "year"),
    fields=(
        USCC,
        Field("year", "年度", T.YEAR, required=True),
        Field("above_threshold", "是否规上工业", T.BOOL, required=True),
        Field("evaluated_tax", "评价税收(万元)", T.MONEY, required=True, negative_ok=True),
        Field("electricity", "用电量(万千瓦时)", T.DECIMAL),
        _money("value_added", "工业增加值(万元)", negative_ok=True),
        _money("main_revenue", "主营业务收入(万元)"),
        _money("rd_spend", "研发经费支出(万元)"),
        Field("energy_tce", "综合能耗(吨标准煤)", T.DECIMAL),
        Field("emissions", "主要污染物排放量(吨)", T.DECIMAL),
        _count("avg_employees", "年平均职工人数"),
        Field("veto", "否决事项", T.STR, max_length=200),
        Field("exempt", "不参评原因", T.STR, max_length=200),
    ),
)

SKILL_LEVELS = (("5", "五级/初级工"), ("4", "四级/中级工"), ("3", "三级/高级工"), ("2", "二级/技师"), ("1", "一级/高级技师"))

# An addition to contract v1.1: the human-resources bureau's vocational-skill certificates, for
# the skill subsidies (技能提升补贴) paid to the employer of each certified worker.
TRAININGS = Kind(
    "trainings",
    "职业技能等级证书",
    key=("certificate_no",),
    fields=(
        Field("certificate_no", "证书编号", T.STR, required=True, max_length=60),
        Field("id_number", "身份证号", T.IDNUM, required=True),
        Field("person_name", "姓名", T.STR, required=True, max_length=50),
        USCC,
        Field("occupation", "职业(工种)", T.STR, required=True, max_length=100),
        Field("level", "技能等级", T.ENUM, required=True, choices=SKILL_LEVELS),
        Field("issued_on", "发证日期", T.DATE, required=True),
        _count("training_hours", "培训学时"),
    ),
)

LAB_OWNERS = (("company", "企业实验室"), ("institute", "科研院所"), ("university", "高校"), ("public", "公共检测机构"))

# An addition to contract v1.1: the shared-lab catalogue staff keep in a sheet, one row per
# instrument with its lab's columns repeated.
LABS = Kind(
    "labs",
    "共享实验室仪器目录",
    key=("lab_code", "instrument_code"),
    fields=(
        Field("lab_code", "实验室编号", T.STR, required=True, max_length=40),
        Field("lab_name", "实验室名称", T.STR, required=True, max_length=200),
        Field("owner_kind", "依托单位类型", T.ENUM, required=True, choices=LAB_OWNERS),
        Field("owner_name", "依托单位", T.STR, required=True, max_length=200),
        Field("owner_uscc", "依托单位统一社会信用代码", T.USCC),
        Field("town", "所在镇街", T.STR, required=True, max_length=50),
        Field("address", "地址", T.STR, max_length=300),
        Field("accreditation", "资质（CMA/CNAS）", T.STR, max_length=200),
        Field("accredited_until", "资质有效期至", T.DATE),
        Field("open_days", "开放日", T.STR, max_length=7),
        Field("opens", "开放时间", T.TIME, required=True),
        Field("closes", "关闭时间", T.TIME, required=True),
        Field("contact_name", "联系人", T.STR, max_length=50),
        Field("contact_phone", "联系电话", T.STR, max_length=50),
        Field("voucher_ok", "可用创新券", T.BOOL),
        Field("needs_approval", "预约需实验室确认", T.BOOL),
        _count("retain_days", "留样期(天)"),  # empty: 15
        Field("instrument_code", "仪器编号", T.STR, required=True, max_length=40),
        Field("instrument_name", "仪器名称", T.STR, required=True, max_length=200),
        Field("capabilities", "检测能力", T.STR, max_length=2000),
        Field("standards", "检测标准", T.STR, max_length=2000),
        Field("price_per_hour", "收费(元/小时)", T.DECIMAL, required=True),
        _count("slot_minutes", "每个时段(分钟)"),
        _count("units", "同时可用台数"),
        Field("needs_training", "需培训上机", T.BOOL),
    ),
)

EXPERT_AVAILABILITY = (("available", "可对接"), ("limited", "时间有限"), ("unavailable", "暂不对接"))

# An addition to contract v1.1: the expert-partner library (科创伙伴) the science bureau keeps.
EXPERTS = Kind(
    "experts",
    "科创伙伴专家库",
    key=("expert_code",),
    fields=(
        Field("expert_code", "专家编号", T.STR, required=True, max_length=40),
        Field("name", "姓名", T.STR, required=True, max_length=50),
        Field("institution", "单位", T.STR, required=True, max_length=200),
        Field("title", "职称", T.STR, max_length=50),
        Field("fields", "领域", T.STR, required=True, max_length=300),
        Field("skills", "专长", T.STR, max_length=2000),
        Field("projects", "代表项目", T.STR, max_length=4000),
        Field("availability", "可对接情况", T.ENUM, choices=EXPERT_AVAILABILITY),
        Field("phone", "联系电话", T.STR, max_length=50),
        Field("email", "电子邮箱", T.STR, max_length=200),
        Field("consent", "同意公开", T.BOOL),
    ),
)

ACHIEVEMENT_MATURITY = (("lab", "实验室阶段"), ("pilot", "小试中试"), ("ready", "可产业化"))
ACHIEVEMENT_TRANSFER = (("transfer", "转让"), ("license", "许可使用"), ("joint", "合作开发"), ("equity", "作价入股"))

# An addition to contract v1.1: the results library (科技成果库) of universities and institutes,
# for the reverse match: an achievement to the firms whose needs it could answer. `expert_code`
# names the expert of the library (`experts`) to contact about it.
ACHIEVEMENTS = Kind(
    "achievements",
    "科技成果库",
    key=("achievement_code",),
    fields=(
        Field("achievement_code", "成果编号", T.STR, required=True, max_length=40),
        Field("title", "成果名称", T.STR, required=True, max_length=200),
        Field("summary", "成果简介", T.STR, required=True, max_length=4000),
        Field("fields", "领域", T.STR, required=True, max_length=300),
        Field("holder", "成果持有单位", T.STR, required=True, max_length=200),
        Field("expert_code", "联系专家编号", T.STR, max_length=40),
        Field("maturity", "成熟度", T.ENUM, required=True, choices=ACHIEVEMENT_MATURITY),
        Field("transfer", "转化方式", T.ENUM, required=True, choices=ACHIEVEMENT_TRANSFER),
        Field("price", "参考价格（万元）", T.DECIMAL),
        Field("public", "同意公开", T.BOOL),
    ),
)

# An addition to contract v1.1: construction projects registered for phased acceptance, as the
# provincial approval system (工程建设项目审批管理系统) lists them; `phases` is the phase plan,
# phases separated by "；", each "name：unit works" (unit works separated by "、").
PROJECTS = Kind(
    "projects",
    "分期验收建设项目",
    key=("project_code",),
    fields=(
        Field("project_code", "项目代码", T.STR, required=True, max_length=40),
        USCC,
        Field("name", "项目名称", T.STR, required=True, max_length=200),
        Field("project_type", "项目类型", T.STR, required=True, max_length=20),
        Field("site", "建设地点", T.STR, required=True, max_length=300),
        Field("permits", "许可证号", T.STR, max_length=300),
        Field("phases", "分期", T.STR, required=True, max_length=4000),
    ),
)

# An addition to contract v1.1: the abnormal-operation list (经营异常名录) as the national system
# (国家企业信用信息公示系统) holds it for the county's entities listed for not filing a report:
# what a county has before qifu lists anyone itself, and removals made there since.
ABNORMAL = Kind(
    "abnormal",
    "经营异常名录（未按期报送年报）",
    key=("uscc", "report_year"),
    fields=(
        USCC,
        Field("report_year", "报告年度", T.YEAR, required=True),
        Field("number", "决定书文号", T.STR, required=True, max_length=40),
        Field("listed_on", "列入日期", T.DATE, required=True),
        Field("removed_on", "移出日期", T.DATE),
    ),
)

# The annual-report service's files (§1.1–1.6), and every kind `qifu import` takes.
ANNUAL_REPORT_KINDS = (REGISTRY, REPORTS, SHAREHOLDERS, TAX, SOCIAL, REMINDERS)
KINDS: dict[str, Kind] = {k.name: k for k in (*ANNUAL_REPORT_KINDS, REQUESTS, PARCELS, INDICATORS, TRAININGS, LABS, EXPERTS,
                                               ACHIEVEMENTS, PROJECTS, ABNORMAL)}

# Personal data in the contract's files: masked in staff lists and pages, shown whole only
# through an audited reveal.
PERSONAL_FIELDS = frozenset({"phone", "email", "legal_rep", "id_number", "person_name", "contact_name", "contact_phone"})

# §2.1 findings and §2.2 reminders sent: column order of the files out.
FINDINGS_COLUMNS = ("uscc", "report_year", "rule_id", "severity", "fields", "message", "suggestion")
REMINDERS_SENT_COLUMNS = ("uscc", "channel", "purpose", "recipient", "sent_at", "message")
